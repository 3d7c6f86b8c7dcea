// bench/peer-go: Go on gev-bench's workloads, one goroutine per task or
// connection.  bench/compare runs it with GOMAXPROCS=1 on one core, so it
// is compared with one gev hub.
//
//	peer-go switch_yield N | switch_direct N | spawn N | mem N SECS |
//	        timers N | echo PORT | http PORT
//
// Same output lines as gev-bench: peer=go workload=NAME value=V unit=U ...
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nhello, world\n"

func result(workload string, format string, a ...interface{}) {
	fmt.Printf("peer=go workload=%s "+format+"\n", append([]interface{}{workload}, a...)...)
}

// switchYield: two goroutines calling runtime.Gosched.
func switchYield(n int) {
	var wg sync.WaitGroup
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/2; i++ {
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	result("switch_yield", "value=%.2f unit=ns/op ops=%d", float64(time.Since(t0).Nanoseconds())/float64(n/2*2), n/2*2)
}

// switchDirect: a turn passed over two unbuffered channels.
func switchDirect(n int) {
	a, b := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	t0 := time.Now()
	go func() {
		for i := 0; i < n/2; i++ {
			<-a
			b <- struct{}{}
		}
		close(done)
	}()
	for i := 0; i < n/2; i++ {
		a <- struct{}{}
		<-b
	}
	<-done
	result("switch_direct", "value=%.2f unit=ns/op ops=%d", float64(time.Since(t0).Nanoseconds())/float64(n/2*2), n/2*2)
}

// spawnAll starts n goroutines running fn(i) and waits for them all.
func spawnAll(n int, fn func(i int)) time.Duration {
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func(i int) { fn(i); wg.Done() }(i)
	}
	wg.Wait()
	return time.Since(t0)
}

func statusKiB(field string) int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			v, _ := strconv.ParseInt(f[0], 10, 64)
			return v
		}
	}
	return -1
}

func mem(n int, secs float64) {
	base := statusKiB("VmRSS")
	spawnAll(n, func(int) { time.Sleep(time.Duration(secs * 1e9)) })
	peak := statusKiB("VmHWM")
	result("mem", "value=%.3f unit=KiB/task peak_kib=%d base_kib=%d n=%d", float64(peak)/float64(n), peak, base, n)
	result("mem_delta", "value=%.3f unit=KiB/task", float64(peak-base)/float64(n))
}

// timers: gev-bench's durations (xorshift32, seed 12345, mod 500,001 us).
func timers(n int) {
	dur := make([]time.Duration, n)
	deadline := make([]int64, n)
	woke := make([]int64, n)
	order := make([]int, 0, n)
	var longest time.Duration
	s := uint32(12345)
	for i := range dur {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		dur[i] = time.Duration(s%500001) * time.Microsecond
		if dur[i] > longest {
			longest = dur[i]
		}
	}
	start := time.Now()
	var mu sync.Mutex // uncontended with GOMAXPROCS=1
	wall := spawnAll(n, func(i int) {
		deadline[i] = int64(time.Since(start) + dur[i])
		time.Sleep(dur[i])
		mu.Lock()
		woke[i] = int64(time.Since(start))
		order = append(order, i)
		mu.Unlock()
	})
	inv, inv1ms := 0, 0
	late := 0.0
	for k := 1; k < n; k++ {
		d := deadline[order[k-1]] - deadline[order[k]]
		if d > 0 {
			inv++
		}
		if d > 1000000 {
			inv1ms++
		}
	}
	for i := range woke {
		late += float64(woke[i]-deadline[i]) / 1e3
	}
	result("timers", "value=%.1f unit=ms wall_ms=%.1f", float64((wall-longest).Nanoseconds())/1e6, float64(wall.Nanoseconds())/1e6)
	result("timers_inv", "value=%d unit=pairs", inv)
	result("timers_inv1ms", "value=%d unit=pairs", inv1ms)
	result("timers_late", "value=%.1f unit=us", late/float64(n))
}

func serve(port string, handle func(c *net.TCPConn)) {
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err == nil {
			go handle(c.(*net.TCPConn)) // Go sets TCP_NODELAY itself
		}
	}
}

func echoConn(c *net.TCPConn) {
	defer c.Close()
	buf := make([]byte, 16384)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// httpConn: the reply once per request head, keep-alive.
func httpConn(c *net.TCPConn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16384)
	out := bytes.Buffer{}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) <= 2 { // the blank line ends a head
			out.WriteString(reply)
			if r.Buffered() == 0 {
				if _, err := c.Write(out.Bytes()); err != nil {
					return
				}
				out.Reset()
			}
		}
	}
}

func main() {
	arg := func(i int) int {
		if len(os.Args) <= i {
			fmt.Fprintln(os.Stderr, "usage: peer-go switch_yield N | switch_direct N | spawn N | mem N SECS | timers N | echo PORT | http PORT")
			os.Exit(2)
		}
		v, _ := strconv.Atoi(os.Args[i])
		return v
	}
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "switch_yield":
		switchYield(arg(2))
	case "switch_direct":
		switchDirect(arg(2))
	case "spawn":
		n := arg(2)
		t := spawnAll(n, func(int) {})
		result("spawn", "value=%.1f unit=ns/task n=%d", float64(t.Nanoseconds())/float64(n), n)
	case "mem":
		secs, _ := strconv.ParseFloat(os.Args[3], 64)
		mem(arg(2), secs)
	case "timers":
		timers(arg(2))
	case "echo":
		serve(strconv.Itoa(arg(2)), echoConn)
	case "http":
		serve(strconv.Itoa(arg(2)), httpConn)
	default:
		arg(99)
	}
}
