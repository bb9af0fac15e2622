// http: the Go net/http anchor of corio's run-http.sh: /plaintext (and /) and
// /json with TechEmpower's headers. Usage: http [ADDR] [--workers N]
// (GOMAXPROCS is set by the script).
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:8080"
	if len(os.Args) > 1 && os.Args[1][0] != '-' {
		addr = os.Args[1]
	}
	plain := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "go")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "13")
		w.Write([]byte("Hello, World!"))
	}
	http.HandleFunc("/", plain)
	http.HandleFunc("/plaintext", plain)
	http.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]string{"message": "Hello, World!"})
		w.Header().Set("Server", "go")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
	fmt.Fprintf(os.Stderr, "http_go: listening on %s\n", addr)
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
