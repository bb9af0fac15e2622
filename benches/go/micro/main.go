// Command micro is the Go side of corio's scheduler micro-benchmarks (issue 2, item 8): the same
// measurements corio's benches make, run on Go's runtime so they can be printed as ratios in the
// same script.
//
//	micro [-workers 2] [-scale 1] [-only name,name]
//
// Measurements (GOMAXPROCS = -workers, default 2), run in this order in one process:
//
//	parked_rss     VmRSS delta / N with N = 1,000,000 goroutines each blocked on a channel
//	               (run first, so no stack freed by an earlier measurement is reused)
//	parked_start   seconds to start those N goroutines (until each has run once)
//	spawn_join     ns per goroutine to spawn and join 1,000,000 goroutines in batches of 1,000
//	               with a sync.WaitGroup (after a 10-batch warm-up)
//	handoff        one-way hand-off ns between two goroutines ping-ponging over unbuffered
//	               channels (1,000,000 round trips; one-way = elapsed / 2N)
//	chan_buffered_1p / _4p  ns per message, 1 or 4 producers, capacity 128, one receiver
//	mutex          ns per Lock/Unlock pair on one sync.Mutex contended by 1,000 goroutines
//	               doing 1,000 each (released together by closing a channel)
//	sleep_overhead ms beyond 10 ms for 100,000 goroutines each sleeping 10 ms, spawn to last join
//	sleep_p99_late p99 over those goroutines of (time slept - 10 ms), ms
//
// Output: one line per measurement, space separated, for scripts:
//
//	go <name> <value> <unit> n=<count>
//
// e.g. "go spawn_join 331.2 ns/goroutine n=1000000". -scale K divides every count by K (for a
// quick smoke run); -only restricts to the named measurements (parked_rss and parked_start are
// one measurement, named "parked"; sleep_overhead and sleep_p99_late are "sleep").
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	workers := flag.Int("workers", 2, "GOMAXPROCS")
	scale := flag.Int("scale", 1, "divide every count by this (smoke runs)")
	only := flag.String("only", "", "comma-separated subset: parked,spawn_join,handoff,mutex,sleep")
	flag.Parse()
	if *scale < 1 {
		*scale = 1
	}
	runtime.GOMAXPROCS(*workers)
	want := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, n := range strings.Split(*only, ",") {
			if strings.TrimSpace(n) == name {
				return true
			}
		}
		return false
	}
	s := *scale
	if want("parked") {
		parked(1_000_000 / s)
	}
	if want("spawn_join") {
		spawnJoin(1_000_000/s, 1_000)
	}
	if want("handoff") {
		handoff(1_000_000 / s)
	}
	if want("timed_handoff") {
		timedHandoff(1_000_000/s, 1_000)
	}
	if want("chan") {
		buffered(4_000_000/s, 1)
		buffered(4_000_000/s, 4)
	}
	if want("mutex") {
		mutex(1_000/s, 1_000)
	}
	if want("sleep") {
		sleepers(100_000/s, 10*time.Millisecond)
	}
}

func report(name string, value float64, unit string, n int) {
	fmt.Printf("go %s %s %s n=%d\n", name, strconv.FormatFloat(value, 'f', 3, 64), unit, n)
}

// rssKiB reads VmRSS of this process from /proc/self/status.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			v := strings.Fields(strings.TrimPrefix(line, "VmRSS:"))
			n, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				panic(err)
			}
			return n
		}
	}
	panic("no VmRSS in /proc/self/status")
}

func parked(n int) {
	runtime.GC()
	before := rssKiB()
	block := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	t := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-block
			done.Done()
		}()
	}
	started.Wait()
	startS := time.Since(t).Seconds()
	after := rssKiB()
	report("parked_rss", float64(after-before)/float64(n), "KiB/goroutine", n)
	report("parked_start", startS, "s", n)
	close(block)
	done.Wait()
}

func spawnJoin(n, batch int) {
	var wg sync.WaitGroup
	run := func(batches int) {
		for b := 0; b < batches; b++ {
			wg.Add(batch)
			for i := 0; i < batch; i++ {
				go func() { wg.Done() }()
			}
			wg.Wait()
		}
	}
	run(10) // warm-up
	batches := n / batch
	if batches < 1 {
		batches = 1
	}
	t := time.Now()
	run(batches)
	el := time.Since(t)
	report("spawn_join", float64(el.Nanoseconds())/float64(batches*batch), "ns/goroutine", batches*batch)
}

func handoff(n int) {
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := 0; i < 1000; i++ { // warm-up
		ping <- i
		<-pong
	}
	t := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i {
			panic("handoff: wrong value")
		}
	}
	el := time.Since(t)
	close(ping)
	report("handoff", float64(el.Nanoseconds())/float64(2*n), "ns/one-way", n)
}

// timedHandoff: handoff with a 60 s deadline on every receive (a timer Reset per wait, as a
// read deadline set per request does), while `others` goroutines sleep on timers of their own;
// corio's timed_handoff.
func timedHandoff(n, others int) {
	const timeout = 60 * time.Second
	stop := make(chan struct{})
	for i := 0; i < others; i++ {
		go func(i int) {
			select {
			case <-time.After(30*time.Second + time.Duration(i)*time.Millisecond):
			case <-stop:
			}
		}(i)
	}
	ping := make(chan int)
	pong := make(chan int)
	recv := func(ch chan int, timer *time.Timer) (int, bool) {
		timer.Reset(timeout)
		select {
		case v, ok := <-ch:
			if !timer.Stop() {
				<-timer.C
			}
			return v, ok
		case <-timer.C:
			panic("timed_handoff: a deadline passed")
		}
	}
	go func() {
		timer := time.NewTimer(timeout)
		timer.Stop()
		for {
			v, ok := recv(ping, timer)
			if !ok {
				close(pong)
				return
			}
			pong <- v
		}
	}()
	timer := time.NewTimer(timeout)
	timer.Stop()
	for i := 0; i < 1000; i++ { // warm-up
		ping <- i
		recv(pong, timer)
	}
	t := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if v, _ := recv(pong, timer); v != i {
			panic("timed_handoff: wrong value")
		}
	}
	el := time.Since(t)
	close(ping)
	close(stop)
	report("timed_handoff", float64(el.Nanoseconds())/float64(2*n), "ns/one-way", n)
}

// buffered: `producers` goroutines send n messages in all through a channel of capacity 128 to
// one receiver; ns per message (reported as chan_buffered_<p>p, the name corio's side uses).
func buffered(n, producers int) {
	ch := make(chan int, 128)
	per := n / producers
	t := time.Now()
	for p := 0; p < producers; p++ {
		go func() {
			for i := 0; i < per; i++ {
				ch <- i
			}
		}()
	}
	for i := 0; i < per*producers; i++ {
		<-ch
	}
	el := time.Since(t)
	report(fmt.Sprintf("chan_buffered_%dp", producers), float64(el.Nanoseconds())/float64(per*producers), "ns/msg", per*producers)
}

func mutex(goroutines, iters int) {
	if goroutines < 1 {
		goroutines = 1
	}
	var mu sync.Mutex
	counter := 0
	start := make(chan struct{})
	var ready, wg sync.WaitGroup
	ready.Add(goroutines)
	wg.Add(goroutines)
	for g := 0; g < goroutines; g++ {
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			for i := 0; i < iters; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	ready.Wait() // every goroutine is created and about to block on start
	t := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t)
	if counter != goroutines*iters {
		panic("mutex: lost update")
	}
	report("mutex", float64(el.Nanoseconds())/float64(goroutines*iters), "ns/lock", goroutines*iters)
}

func sleepers(n int, d time.Duration) {
	late := make([]time.Duration, n)
	var wg sync.WaitGroup
	wg.Add(n)
	t := time.Now()
	for i := 0; i < n; i++ {
		go func(i int) {
			s := time.Now()
			time.Sleep(d)
			late[i] = time.Since(s) - d
			wg.Done()
		}(i)
	}
	wg.Wait()
	over := time.Since(t) - d
	sort.Slice(late, func(a, b int) bool { return late[a] < late[b] })
	p99 := late[(len(late)*99)/100]
	report("sleep_overhead", float64(over.Nanoseconds())/1e6, "ms", n)
	report("sleep_p99_late", float64(p99.Nanoseconds())/1e6, "ms", n)
}
