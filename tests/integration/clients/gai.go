// One LookupIPAddr per iteration through Go's pure resolver (run with GODEBUG=netdns=go).
// usage: gai-go NAME [COUNT [INTERVAL_MS]]
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gai-go NAME [COUNT [INTERVAL_MS]]")
		os.Exit(2)
	}
	n, ms, rc := 1, 0, 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	if len(os.Args) > 3 {
		ms, _ = strconv.Atoi(os.Args[3])
	}
	r := &net.Resolver{PreferGo: true}
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		addrs, err := r.LookupIPAddr(ctx, os.Args[1])
		cancel()
		if err != nil {
			fmt.Println("error", err)
			rc = 1
		} else {
			fmt.Println(addrs[0].IP)
		}
		if ms > 0 && i+1 < n {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	}
	os.Exit(rc)
}
