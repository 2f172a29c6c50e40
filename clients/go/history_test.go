package labelwise

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type vectorArm struct {
	Name           string  `json:"name"`
	Picks          int64   `json:"picks"`
	Weight         float64 `json:"weight"`
	ExpectedReward float64 `json:"expected_reward"`
	Evidence       float64 `json:"evidence"`
}

type vectorAuto struct {
	Arms          []vectorArm `json:"arms"`
	Strategies    []string    `json:"strategies"`
	Reward        string      `json:"reward"`
	HistoryRounds int64       `json:"history_rounds"`
	HistoryItems  int64       `json:"history_items"`
}

// checkAutoSelection compares auto's report with the vector's (absent: not checked; null:
// there must be none); weights, rewards and evidence within 1e-6 relative.
func checkAutoSelection(t *testing.T, name string, got Result, want json.RawMessage) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	var report *vectorAuto
	if err := json.Unmarshal(want, &report); err != nil {
		t.Fatalf("%s auto_selection: %v", name, err)
	}
	if report == nil || got.Auto == nil {
		if report != nil || got.Auto != nil {
			t.Errorf("%s auto selection %v; want %v", name, got.Auto != nil, report != nil)
		}
		return
	}
	a := got.Auto
	if !reflect.DeepEqual(a.GetStrategies(), report.Strategies) || a.GetReward() != report.Reward ||
		a.GetHistoryRounds() != report.HistoryRounds || a.GetHistoryItems() != report.HistoryItems {
		t.Errorf("%s auto selection %v; want %+v", name, a, report)
	}
	if len(a.GetArms()) != len(report.Arms) {
		t.Fatalf("%s has %d arms; want %d", name, len(a.GetArms()), len(report.Arms))
	}
	for i, w := range report.Arms {
		g := a.GetArms()[i]
		if g.GetName() != w.Name || g.GetPicks() != w.Picks || !closeRelative(g.GetWeight(), w.Weight) ||
			!closeRelative(g.GetExpectedReward(), w.ExpectedReward) ||
			!closeRelative(g.GetEvidence(), w.Evidence) {
			t.Errorf("%s arm %d is %v; want %+v", name, i, g, w)
		}
	}
}

// TestHistoryVectors replays tests/vectors/history: "auto" from the caller's past rounds,
// unary and streamed (the history travels in the first chunk).
func TestHistoryVectors(t *testing.T) {
	vectors := loadJSON[vector](t, "../../tests/vectors/history/*.json")
	client := dial(t)
	streaming := dial(t, WithMaxMessageBytes(headerRoom+1), WithChunkBytes(256))
	for name, v := range vectors {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, c := range []*Client{client, streaming} {
				got, err := c.SelectQueries(ctx, v.request(t))
				if err != nil {
					t.Fatal(err)
				}
				checkResponse(t, got, v)
				for i, r := range got.Results {
					if r.Name == "auto" && len(r.Auto.GetStrategies()) != len(r.Indices) {
						t.Errorf("result %d: %d arms for %d picks", i, len(r.Auto.GetStrategies()),
							len(r.Indices))
					}
				}
			}
		})
	}
}
