// Command echo is the Go anchor echo server for corio's benchmarks: one goroutine per
// connection, the shape corio copies.
//
//	echo [ADDR] [--addr ADDR] [--workers N]
//
// Defaults: 127.0.0.1:7000, N = GOMAXPROCS as set by the environment (all cores). --workers
// sets runtime.GOMAXPROCS. Each connection gets a 16 KiB read buffer and TCP_NODELAY (Go's
// default, set explicitly). The listen backlog is Go's: net.core.somaxconn (4096 here), which
// Go reads from /proc; Go 1.19 also raises the soft RLIMIT_NOFILE to the hard limit by itself.
// Temporary accept errors (EMFILE) are retried with a back-off of 5 ms doubling to 1 s, as
// net/http does.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	addr := "127.0.0.1:7000"
	workers := 0
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--addr" || a == "-addr":
			i++
			if i >= len(args) {
				usage("--addr needs a value")
			}
			addr = args[i]
		case a == "--workers" || a == "-workers":
			i++
			if i >= len(args) {
				usage("--workers needs a value")
			}
			n, err := strconv.Atoi(args[i])
			if err != nil || n < 1 {
				usage("bad --workers " + args[i])
			}
			workers = n
		case len(a) > 0 && a[0] != '-':
			addr = a
		default:
			usage("unknown flag " + a)
		}
	}
	if workers > 0 {
		runtime.GOMAXPROCS(workers)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_go:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "echo_go: listening on %s with GOMAXPROCS=%d\n", ln.Addr(), runtime.GOMAXPROCS(0))
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http does
				fmt.Fprintf(os.Stderr, "echo_go: accept: %v; retrying in %v\n", err, backoff)
				time.Sleep(backoff)
				if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				continue
			}
			fmt.Fprintln(os.Stderr, "echo_go: accept:", err)
			os.Exit(1)
		}
		backoff = 5 * time.Millisecond
		go handle(c)
	}
}

func handle(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	buf := make([]byte, 16*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a reset: the connection is done
			return
		}
	}
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "echo_go: %s\nusage: echo [ADDR] [--addr ADDR] [--workers N]\n", msg)
	os.Exit(2)
}
