package labelwise

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// oneStrategy answers ListStrategies with one strategy: enough to prove the handshake.
type oneStrategy struct {
	labelwisev1.UnimplementedQuerySelectionServiceServer
}

func (oneStrategy) ListStrategies(context.Context, *labelwisev1.ListStrategiesRequest) (*labelwisev1.ListStrategiesResponse, error) {
	return &labelwisev1.ListStrategiesResponse{
		Strategies: []*labelwisev1.StrategyInfo{{Name: "random"}}}, nil
}

// selfSigned is a certificate for "localhost", made for this test run.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parsed)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}

// TestTLS runs a TLS server in this process, since `labelwise serve` itself speaks plaintext
// behind a mesh or proxy.
func TestTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	labelwisev1.RegisterQuerySelectionServiceServer(server, oneStrategy{})
	go func() { _ = server.Serve(listener) }()
	defer server.Stop()
	_, port, _ := net.SplitHostPort(listener.Addr().String())
	target := "localhost:" + port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	trusting, err := Dial(target, WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer trusting.Close()
	strategies, err := trusting.ListStrategies(ctx)
	if err != nil || len(strategies) != 1 || strategies[0].GetName() != "random" {
		t.Fatalf("over TLS: %v, %v", strategies, err)
	}
	// The system roots do not trust this certificate, and plaintext cannot talk to TLS.
	for name, opts := range map[string][]Option{"system roots": {WithTLS(nil)}, "plaintext": nil} {
		client, err := Dial(target, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.ListStrategies(ctx)
		_ = client.Close()
		var lwErr *Error
		if !errors.As(err, &lwErr) || lwErr.Code != codes.Unavailable {
			t.Errorf("%s: got %v; want UNAVAILABLE", name, err)
		}
	}
}
