// Command lwload is bench/load.py's load generator: a lean gRPC client that sends one
// pre-encoded request over and over, so that as much of the machine as possible is left
// to the server under test.
//
// It marshals nothing and decodes nothing: the request is the serialized protobuf read
// from -data, sent through a pass-through codec, and a response is only counted (its
// size kept). Each of -c concurrent clients has its own connection (so SO_REUSEPORT can
// spread them over worker processes) and one call in flight at a time. The run ends
// after -n calls in all, or after -z, when no new call starts and the ones in flight
// finish and count. The report, on stdout, is JSON with ghz's field names for what both
// measure (count, rps, latencyDistribution in ns, statusCodeDistribution), plus the
// CPU this process used, so bench/load.py can show the client's share of the cores.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// rawCodec sends the request bytes as they are and keeps only a response's length.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*int) = data.Len()
	return nil
}

func (rawCodec) Name() string { return "proto" } // the wire content type stays grpc+proto

type percentile struct {
	Percentage int   `json:"percentage"`
	Latency    int64 `json:"latency"` // ns
}

type report struct {
	Count                  int64            `json:"count"`
	Total                  int64            `json:"total"` // ns, first call sent to last answer
	Rps                    float64          `json:"rps"`
	LatencyDistribution    []percentile     `json:"latencyDistribution"`
	StatusCodeDistribution map[string]int64 `json:"statusCodeDistribution"`
	ClientCPUSeconds       float64          `json:"clientCpuSeconds"`
	ResponseBytes          int              `json:"responseBytes"` // of the last OK answer
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func main() {
	address := flag.String("addr", "127.0.0.1:50051", "server host:port")
	method := flag.String("method", "/labelwise.v1.QuerySelectionService/SelectQueries", "full method name")
	data := flag.String("data", "", "file holding the serialized request message")
	clients := flag.Int("c", 1, "concurrent clients, each with its own connection")
	total := flag.Int64("n", 0, "calls in all (0: run for -z instead)")
	duration := flag.Duration("z", 0, "how long to start calls for (with -n 0)")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of each call")
	maxBytes := flag.Int("max-message-bytes", 256<<20, "largest message sent or received")
	flag.Parse()
	request, err := os.ReadFile(*data)
	if err == nil {
		var out report
		out, err = run(*address, *method, request, *clients, *total, *duration, *timeout, *maxBytes)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lwload:", err)
		os.Exit(1)
	}
}

func run(address, method string, request []byte, clients int, total int64, duration, timeout time.Duration, maxBytes int) (report, error) {
	if clients < 1 || (total <= 0) == (duration <= 0) {
		return report{}, fmt.Errorf("want -c >= 1 and exactly one of -n > 0 or -z > 0")
	}
	conns := make([]*grpc.ClientConn, clients)
	for i := range conns {
		conn, err := grpc.NewClient(address,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{}),
				grpc.MaxCallRecvMsgSize(maxBytes), grpc.MaxCallSendMsgSize(maxBytes)))
		if err != nil {
			return report{}, err
		}
		defer conn.Close()
		if err := ready(conn, 30*time.Second); err != nil {
			return report{}, fmt.Errorf("connecting to %s: %w", address, err)
		}
		conns[i] = conn
	}

	var issued atomic.Int64
	var stop atomic.Bool
	latencies := make([][]time.Duration, clients)
	codes := make([]map[string]int64, clients)
	sizes := make([]int, clients)
	var wg sync.WaitGroup
	cpuBefore, began := cpuSeconds(), time.Now()
	if duration > 0 {
		time.AfterFunc(duration, func() { stop.Store(true) })
	}
	for i, conn := range conns {
		wg.Add(1)
		go func(i int, conn *grpc.ClientConn) {
			defer wg.Done()
			codes[i] = map[string]int64{}
			for !stop.Load() && (total == 0 || issued.Add(1) <= total) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				var size int
				sent := time.Now()
				err := conn.Invoke(ctx, method, &request, &size)
				latencies[i] = append(latencies[i], time.Since(sent))
				cancel()
				codes[i][status.Code(err).String()]++
				if err == nil {
					sizes[i] = size
				}
			}
		}(i, conn)
	}
	wg.Wait()
	elapsed, cpu := time.Since(began), cpuSeconds()-cpuBefore

	out := report{Total: elapsed.Nanoseconds(), StatusCodeDistribution: map[string]int64{}, ClientCPUSeconds: cpu}
	var all []time.Duration
	for i := range conns {
		all = append(all, latencies[i]...)
		for code, n := range codes[i] {
			out.StatusCodeDistribution[code] += n
		}
		if sizes[i] > 0 {
			out.ResponseBytes = sizes[i]
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	out.Count = int64(len(all))
	out.Rps = float64(out.Count) / elapsed.Seconds()
	for _, p := range []int{10, 25, 50, 75, 90, 95, 99} {
		if len(all) > 0 {
			at := (len(all)*p + 99) / 100 // nearest rank
			out.LatencyDistribution = append(out.LatencyDistribution, percentile{p, all[at-1].Nanoseconds()})
		}
	}
	return out, nil
}

// ready connects conn and waits until it can carry calls.
func ready(conn *grpc.ClientConn, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(ctx, state) {
			return ctx.Err()
		}
	}
	return nil
}
