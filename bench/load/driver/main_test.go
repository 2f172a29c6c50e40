package main

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// serve answers every call of any method with a 3-byte message, failing every third one
// with RESOURCE_EXHAUSTED; it counts the calls and checks each request's size.
func serve(t *testing.T, requestBytes int) (string, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	handler := func(_ any, stream grpc.ServerStream) error {
		var size int
		if err := stream.RecvMsg(&size); err != nil {
			return err
		}
		if size != requestBytes {
			return status.Errorf(codes.InvalidArgument, "got %d bytes, want %d", size, requestBytes)
		}
		if calls.Add(1)%3 == 0 {
			return status.Error(codes.ResourceExhausted, "every third call")
		}
		answer := []byte{1, 2, 3}
		return stream.SendMsg(&answer)
	}
	server := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(handler))
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String(), &calls
}

func TestFixedCountSendsTheBytesAndCountsEveryCode(t *testing.T) {
	request := make([]byte, 40_000)
	address, calls := serve(t, len(request))
	out, err := run(address, "/any.Service/Call", request, 4, 30, 0, 10*time.Second, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if out.Count != 30 || calls.Load() != 30 {
		t.Fatalf("count %d, server saw %d calls; want 30 and 30", out.Count, calls.Load())
	}
	want := map[string]int64{"OK": 20, "ResourceExhausted": 10}
	for code, n := range want {
		if out.StatusCodeDistribution[code] != n {
			t.Fatalf("codes %v, want %v", out.StatusCodeDistribution, want)
		}
	}
	if len(out.StatusCodeDistribution) != len(want) || out.ResponseBytes != 3 {
		t.Fatalf("codes %v, response bytes %d", out.StatusCodeDistribution, out.ResponseBytes)
	}
	previous := int64(0)
	for _, p := range out.LatencyDistribution {
		if p.Latency < previous || p.Latency <= 0 {
			t.Fatalf("latency percentiles not increasing: %v", out.LatencyDistribution)
		}
		previous = p.Latency
	}
	if out.Rps <= 0 || out.Total <= 0 {
		t.Fatalf("rps %g, total %d", out.Rps, out.Total)
	}
}

func TestTimedRunStopsAndFinishesWhatIsInFlight(t *testing.T) {
	address, calls := serve(t, 10)
	began := time.Now()
	out, err := run(address, "/any.Service/Call", make([]byte, 10), 2, 0, 200*time.Millisecond, 10*time.Second, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(began); elapsed > 5*time.Second {
		t.Fatalf("a 200 ms run took %v", elapsed)
	}
	if out.Count == 0 || out.Count != calls.Load() {
		t.Fatalf("count %d, server saw %d: every started call must count", out.Count, calls.Load())
	}
}

func TestBadArgumentsAndNoServerAreErrors(t *testing.T) {
	if _, err := run("127.0.0.1:1", "/m", nil, 0, 1, 0, time.Second, 1<<20); err == nil {
		t.Fatal("-c 0 accepted")
	}
	if _, err := run("127.0.0.1:1", "/m", nil, 1, 1, time.Second, time.Second, 1<<20); err == nil {
		t.Fatal("both -n and -z accepted")
	}
}
