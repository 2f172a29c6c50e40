package labelwise

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

type streamVector struct {
	Description string `json:"description"`
	Strategy    struct {
		Name   string                    `json:"name"`
		Params map[string]map[string]any `json:"params"`
	} `json:"strategy"`
	Budget    *float64 `json:"budget"`
	WindowCap *struct {
		WindowItems int64 `json:"window_items"`
		MaxLabels   int64 `json:"max_labels"`
	} `json:"window_cap"`
	Seed  uint64 `json:"seed"`
	Steps []struct {
		Tensors     map[string]vectorTensor `json:"tensors"`
		Temperature *float64                `json:"temperature"`
		Response    struct {
			Label              []bool    `json:"label"`
			Utilities          []float64 `json:"utilities"`
			LabelProbabilities []float64 `json:"label_probabilities"`
			ItemsSeen          int64     `json:"items_seen"`
			ItemsLabeled       int64     `json:"items_labeled"`
			Token              string    `json:"token"`
		} `json:"response"`
	} `json:"steps"`
}

func (v streamVector) config() StreamConfig {
	params := map[string]any{}
	for name, value := range v.Strategy.Params {
		params[name] = vectorParam(value)
	}
	config := StreamConfig{Strategy: Strategy{Name: v.Strategy.Name, Params: params}, Budget: v.Budget, Seed: v.Seed}
	if v.WindowCap != nil {
		config.WindowItems, config.MaxLabels = v.WindowCap.WindowItems, v.WindowCap.MaxLabels
	}
	return config
}

func streamItems(t *testing.T, tensors map[string]vectorTensor, temperature *float64) StreamItems {
	items := StreamItems{Temperature: temperature}
	targets := map[string]**Tensor{"probabilities": &items.Probabilities, "logits": &items.Logits,
		"committee": &items.Committee, "committee_logits": &items.CommitteeLogits, "utilities": &items.Utilities,
		"frequencies": &items.Frequencies}
	for name, tensor := range tensors {
		target, ok := targets[name]
		if !ok {
			t.Fatalf("stream vector tensor %q is not an item field this client knows", name)
		}
		*target = tensor.tensor(t)
	}
	return items
}

func TestStreamVectors(t *testing.T) {
	vectors := loadJSON[streamVector](t, "../../tests/vectors/stream/*.json")
	client := dial(t)
	for name, v := range vectors {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			selector := client.StreamSelector(v.config(), nil)
			for i, step := range v.Steps {
				got, err := selector.Decide(ctx, streamItems(t, step.Tensors, step.Temperature))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				want := step.Response
				if len(got.Label) != len(want.Label) || got.ItemsSeen != want.ItemsSeen || got.ItemsLabeled != want.ItemsLabeled {
					t.Fatalf("step %d: got %v (%d seen, %d labeled), want %v", i, got.Label, got.ItemsSeen, got.ItemsLabeled, want.Label)
				}
				for j := range want.Label {
					if got.Label[j] != want.Label[j] || !closeRelative(got.Utilities[j], want.Utilities[j]) ||
						!closeRelative(got.LabelProbabilities[j], want.LabelProbabilities[j]) {
						t.Fatalf("step %d item %d: got %v %v %v", i, j, got.Label[j], got.Utilities[j], got.LabelProbabilities[j])
					}
				}
				token, _ := base64.StdEncoding.DecodeString(want.Token)
				if !bytes.Equal(got.Token, token) || !bytes.Equal(selector.Token, token) {
					t.Fatalf("step %d: the token differs from the vector's", i)
				}
			}
		})
	}
}

func TestDecideStreamEqualsDecide(t *testing.T) {
	vectors := loadJSON[streamVector](t, "../../tests/vectors/stream/*.json")
	v := vectors["stream_split_logits_window_cap"]
	client := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var batches []StreamItems
	for _, step := range v.Steps {
		batches = append(batches, streamItems(t, step.Tensors, step.Temperature))
	}
	selector := client.StreamSelector(v.config(), nil)
	answers, err := selector.DecideStream(ctx, batches)
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range v.Steps {
		token, _ := base64.StdEncoding.DecodeString(step.Response.Token)
		if !bytes.Equal(answers[i].Token, token) {
			t.Fatalf("answer %d: the stream's token differs from Decide's", i)
		}
	}
}

func TestAlteredTokenNamesTheField(t *testing.T) {
	client := dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	utilities, _ := Float64Tensor([]float64{0.1, 0.9, 0.5}, 3)
	selector := client.StreamSelector(StreamConfig{Strategy: Strategy{Name: "quantile_filter"}}, nil)
	if _, err := selector.Decide(ctx, StreamItems{Utilities: utilities}); err != nil {
		t.Fatal(err)
	}
	selector.Token[len(selector.Token)-1] ^= 1
	_, err := selector.Decide(ctx, StreamItems{Utilities: utilities})
	var lwErr *Error
	if !errors.As(err, &lwErr) || lwErr.Field() != "token" {
		t.Fatalf("want an error naming token, got %v", err)
	}
}
