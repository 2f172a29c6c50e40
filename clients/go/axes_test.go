package labelwise

import (
	"slices"
	"testing"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// Every tensor field of SelectQueriesRequest declares its split axis in the proto, and the
// Request maps each of them (and nothing else) by name.
func TestEveryRequestTensorHasAnAxisFromTheProto(t *testing.T) {
	var named []string
	for name := range (&Request{}).tensorFields() {
		named = append(named, name)
	}
	var declared, tensorFields []string
	for _, split := range splitAxes {
		declared = append(declared, string(split.field.Name()))
	}
	fields := (*labelwisev1.SelectQueriesRequest)(nil).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if m := fields.Get(i).Message(); m != nil && m.FullName() == "labelwise.v1.Tensor" {
			tensorFields = append(tensorFields, string(fields.Get(i).Name()))
		}
	}
	slices.Sort(named)
	slices.Sort(declared)
	slices.Sort(tensorFields)
	if !slices.Equal(named, declared) || !slices.Equal(declared, tensorFields) {
		t.Fatalf("Request tensors %v, declared axes %v, Tensor fields %v", named, declared, tensorFields)
	}
	axes := map[string]int{}
	for _, split := range splitAxes {
		axes[string(split.field.Name())] = split.axis
		if split.labeled != (split.field.Name() == "labeled_embeddings" || split.field.Name() == "labeled_targets") {
			t.Errorf("%s: labeled = %v", split.field.Name(), split.labeled)
		}
	}
	if axes["committee"] != 1 || axes["regression_samples"] != 1 || axes["probabilities"] != 0 {
		t.Errorf("axes = %v", axes)
	}
}

func TestReasonModelNotCachedIsTheEnumName(t *testing.T) {
	if ReasonModelNotCached != "MODEL_NOT_CACHED" {
		t.Fatalf("ReasonModelNotCached = %q", ReasonModelNotCached)
	}
}
