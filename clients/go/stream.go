package labelwise

import (
	"context"
	"fmt"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// StreamConfig is a stream's configuration (StreamSelectionService), fixed for the stream:
// the service refuses a token issued under another one.
type StreamConfig struct {
	Strategy    Strategy // a strategy of family "stream", such as "variable_uncertainty"
	Budget      *float64 // target labeling rate in (0, 1]; nil: 0.1
	WindowItems int64    // with MaxLabels: at most MaxLabels labels per tumbling window; 0: no cap
	MaxLabels   int64
	Seed        uint64 // a new stream's seed (randomised strategies)
}

// StreamItems is one batch of a stream's items: exactly one of the tensors.
type StreamItems struct {
	Probabilities   *Tensor // [n, c]
	Logits          *Tensor // [n, c]
	Committee       *Tensor // [m, n, c]
	CommitteeLogits *Tensor // [m, n, c]
	Utilities       *Tensor // [n], in [0, 1]
	Frequencies     *Tensor // [n, c] kernel frequency estimates, for "pal" only
	Temperature     *float64
}

// StreamDecisions answers one batch: item i's decision, utility and labeling probability at
// index i, the token for the next batch and the stream's counters.
type StreamDecisions struct {
	Label              []bool
	Utilities          []float64
	LabelProbabilities []float64
	Token              []byte
	ItemsSeen          int64
	ItemsLabeled       int64
}

// StreamSelector carries one stream's token from each answer to the next call.
type StreamSelector struct {
	stub   labelwisev1.StreamSelectionServiceClient
	config StreamConfig
	// Token is the stream's state after the last answer: save it to resume the stream
	// later, on any replica (nil: a new stream).
	Token []byte
}

// StreamSelector starts (token nil) or resumes a stream.
func (c *Client) StreamSelector(config StreamConfig, token []byte) *StreamSelector {
	return &StreamSelector{stub: labelwisev1.NewStreamSelectionServiceClient(c.conn), config: config, Token: token}
}

// Request is the DecideRequest for items with the current token.
func (s *StreamSelector) Request(items StreamItems) (*labelwisev1.DecideRequest, error) {
	params := map[string]*labelwisev1.ParamValue{}
	for name, value := range s.config.Strategy.Params {
		p, err := toParam(value)
		if err != nil {
			return nil, fmt.Errorf("labelwise: parameter %s %w", name, err)
		}
		params[name] = p
	}
	m := &labelwisev1.DecideRequest{
		Strategy:    &labelwisev1.StrategySpec{Name: s.config.Strategy.Name, Params: params},
		Budget:      s.config.Budget,
		Token:       s.Token,
		Seed:        s.config.Seed,
		Temperature: items.Temperature,
	}
	if s.config.WindowItems != 0 || s.config.MaxLabels != 0 {
		m.WindowCap = &labelwisev1.StreamWindowCap{WindowItems: s.config.WindowItems, MaxLabels: s.config.MaxLabels}
	}
	set := []struct {
		tensor *Tensor
		field  **labelwisev1.Tensor
	}{
		{items.Probabilities, &m.Probabilities}, {items.Logits, &m.Logits},
		{items.Committee, &m.Committee}, {items.CommitteeLogits, &m.CommitteeLogits},
		{items.Utilities, &m.Utilities}, {items.Frequencies, &m.Frequencies},
	}
	for _, s := range set {
		if s.tensor != nil {
			*s.field = s.tensor.message()
		}
	}
	return m, nil
}

// Decide asks for one batch's decisions; the token moves on to the answer's.
func (s *StreamSelector) Decide(ctx context.Context, items StreamItems) (*StreamDecisions, error) {
	request, err := s.Request(items)
	if err != nil {
		return nil, err
	}
	response, err := s.stub.Decide(ctx, request)
	if err != nil {
		return nil, asError(err)
	}
	s.Token = response.GetToken()
	return decisionsFrom(response), nil
}

// DecideStream sends every batch over one DecideStream call, each after the previous
// answer, and returns the answers in order; the token moves on with each answer.
func (s *StreamSelector) DecideStream(ctx context.Context, batches []StreamItems) ([]*StreamDecisions, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.stub.DecideStream(ctx)
	if err != nil {
		return nil, asError(err)
	}
	var out []*StreamDecisions
	for i, items := range batches {
		request, err := s.Request(items)
		if err != nil {
			return out, err
		}
		if i > 0 {
			request.Token = nil // the call carries the state on
		}
		if err := stream.Send(&labelwisev1.DecideStreamRequest{Request: request}); err != nil {
			if _, recvErr := stream.Recv(); recvErr != nil {
				err = recvErr // the call's status, rather than the send's io.EOF
			}
			return out, asError(err)
		}
		answer, err := stream.Recv()
		if err != nil {
			return out, asError(err)
		}
		s.Token = answer.GetResponse().GetToken()
		out = append(out, decisionsFrom(answer.GetResponse()))
	}
	if err := stream.CloseSend(); err != nil {
		return out, asError(err)
	}
	return out, nil
}

func decisionsFrom(r *labelwisev1.DecideResponse) *StreamDecisions {
	return &StreamDecisions{
		Label: r.GetLabel(), Utilities: r.GetUtilities(), LabelProbabilities: r.GetLabelProbabilities(),
		Token: r.GetToken(), ItemsSeen: r.GetItemsSeen(), ItemsLabeled: r.GetItemsLabeled(),
	}
}
