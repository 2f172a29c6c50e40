package labelwise_test

// The README's examples, run against the real server TestMain starts. scripts/docs copies
// each region between "// docs:start NAME" and "// docs:end NAME" into README.md (and so
// into the documentation site), with serverAddress() shown as "localhost:50051".

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	labelwise "github.com/labelwise/labelwise/clients/go"
)

func serverAddress() string { return labelwise.ServerAddressForExamples() }

func Example_selectQueries() {
	// docs:start select
	client, err := labelwise.Dial(serverAddress()) // labelwise.WithTLS(nil) for TLS
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	probs, err := labelwise.Float32Tensor([]float32{0.9, 0.1, 0.55, 0.45, 0.7, 0.3}, 3, 2) // [n=3, c=2]
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.SelectQueries(ctx, &labelwise.Request{
		Strategies: []labelwise.Strategy{{Name: "margin"}, {Name: "entropy"}},
		K:          2, Probabilities: probs})
	var bad *labelwise.Error
	if errors.As(err, &bad) {
		log.Fatalf("%s: field %s: %v", bad.Code, bad.Field(), bad.Violations)
	} else if err != nil {
		log.Fatal(err)
	}
	for _, r := range resp.Results {
		fmt.Printf("%s %v %.3f\n", r.Name, r.Indices, r.Scores)
	}
	// docs:end select

	// Output:
	// margin [1 2] [-0.100 -0.400]
	// entropy [1 2] [0.688 0.611]
}

func Example_modelMode() {
	restore := writeExampleModel("classifier.onnx")
	defer restore()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := labelwise.Dial(serverAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// docs:start model
	models, err := labelwise.ReadModels("classifier.onnx") // or [][]byte{onnxBytes}
	if err != nil {
		log.Fatal(err)
	}
	n, d := 200, 6 // what the model takes: [n, d] float32 rows
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	features, err := labelwise.Float32Tensor(x, n, d)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.SelectQueries(ctx, &labelwise.Request{
		Strategies: []labelwise.Strategy{{Name: "entropy"},
			{Name: "deepfool", Params: map[string]any{"return_points": true}}},
		K: 20, Models: models, ModelInputs: features})
	if err != nil {
		log.Fatal(err)
	}
	points := resp.Results[1].AdversarialPoints // [20, d]: moved just across the boundary
	fmt.Println(len(resp.Results[1].Indices), points.Shape())
	// docs:end model

	// Output:
	// 20 [20 6]
}

func Example_checkStopping() {
	client, err := labelwise.Dial(serverAddress())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// docs:start stopping
	// The labels the last r = 4 models predicted on the same s = 6 stop-set items, oldest first.
	predicted := []int64{
		0, 1, 2, 0, 1, 1,
		0, 1, 2, 0, 1, 2,
		0, 1, 2, 0, 1, 2,
		0, 1, 2, 0, 1, 2,
	}
	labels, err := labelwise.Int64Tensor(predicted, 4, 6)
	if err != nil {
		log.Fatal(err)
	}
	verdict, err := client.CheckStopping(ctx, &labelwise.StoppingRequest{
		StopSetPredictions: labels, // or [r, s, c] probabilities; PoolProbabilities is optional
		KappaWindow:        new(int64(2)),
		Rule:               labelwise.RuleAny}) // nil thresholds: the papers' defaults
	if err != nil {
		log.Fatal(err)
	}
	kappa, _ := verdict.Criterion("stabilizing_predictions")
	fmt.Printf("stop %v, mean kappa %.2f, kappas %.2f\n", verdict.Stop, kappa.Value, verdict.Kappas)
	// docs:end stopping

	// Output:
	// stop true, mean kappa 1.00, kappas [0.75 1.00 1.00]
}

// writeExampleModel writes the softmax-linear model of tests/vectors/model/model_linear.json
// (6 inputs) to name in a fresh directory and changes into it; restore changes back.
func writeExampleModel(name string) (restore func()) {
	raw, err := os.ReadFile("../../tests/vectors/model/model_linear.json")
	if err != nil {
		log.Fatal(err)
	}
	var vector struct {
		Request struct {
			Models []string `json:"models"`
		} `json:"request"`
	}
	if err := json.Unmarshal(raw, &vector); err != nil {
		log.Fatal(err)
	}
	model, err := base64.StdEncoding.DecodeString(vector.Request.Models[0])
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "labelwise-example")
	if err != nil {
		log.Fatal(err)
	}
	back, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), model, 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		log.Fatal(err)
	}
	return func() {
		_ = os.Chdir(back)
		_ = os.RemoveAll(dir)
	}
}
