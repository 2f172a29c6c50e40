package labelwise

import (
	"encoding/binary"
	"fmt"
	"math"

	labelwisev1 "github.com/labelwise/labelwise/clients/go/gen/labelwise/v1"
)

// Tensor is a dense array ready for the wire: its elements little-endian in C (row-major)
// order, whatever the host's byte order. Build one with Float32Tensor, Float64Tensor or
// Int64Tensor; read one (such as Result.AdversarialPoints) with Shape and Float64s.
type Tensor struct {
	dtype labelwisev1.DataType
	shape []int64
	raw   []byte
}

// Float32Tensor encodes data, laid out row-major, as a float32 tensor of the given shape
// (for example n, c for probabilities). The product of shape must equal len(data).
func Float32Tensor(data []float32, shape ...int) (*Tensor, error) {
	dims, err := checkShape(len(data), shape)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return &Tensor{labelwisev1.DataType_DATA_TYPE_FLOAT32, dims, raw}, nil
}

// Float64Tensor encodes data, laid out row-major, as a float64 tensor of the given shape.
func Float64Tensor(data []float64, shape ...int) (*Tensor, error) {
	dims, err := checkShape(len(data), shape)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	return &Tensor{labelwisev1.DataType_DATA_TYPE_FLOAT64, dims, raw}, nil
}

// Int64Tensor encodes data, laid out row-major, as an int64 tensor of the given shape (for
// example r, s class labels for StoppingRequest.StopSetPredictions).
func Int64Tensor(data []int64, shape ...int) (*Tensor, error) {
	dims, err := checkShape(len(data), shape)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return &Tensor{labelwisev1.DataType_DATA_TYPE_INT64, dims, raw}, nil
}

// Float64s decodes the elements, row-major, as float64 (from FLOAT32, FLOAT64, INT32 or
// INT64; other dtypes give an error).
func (t *Tensor) Float64s() ([]float64, error) {
	size := t.elementSize()
	if size == 0 || int64(len(t.raw))%size != 0 {
		return nil, fmt.Errorf("labelwise: cannot decode a %s tensor of %d bytes", t.dtype, len(t.raw))
	}
	out := make([]float64, int64(len(t.raw))/size)
	for i := range out {
		b := t.raw[int64(i)*size:]
		switch t.dtype {
		case labelwisev1.DataType_DATA_TYPE_FLOAT32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case labelwisev1.DataType_DATA_TYPE_FLOAT64:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case labelwisev1.DataType_DATA_TYPE_INT32:
			out[i] = float64(int32(binary.LittleEndian.Uint32(b)))
		case labelwisev1.DataType_DATA_TYPE_INT64:
			out[i] = float64(int64(binary.LittleEndian.Uint64(b)))
		}
	}
	return out, nil
}

// Shape is the tensor's shape, outermost dimension first.
func (t *Tensor) Shape() []int64 { return append([]int64(nil), t.shape...) }

func checkShape(elements int, shape []int) ([]int64, error) {
	product := 1
	dims := make([]int64, len(shape))
	for i, size := range shape {
		if size < 0 {
			return nil, fmt.Errorf("labelwise: tensor shape %v has a negative size", shape)
		}
		product *= size
		dims[i] = int64(size)
	}
	if product != elements {
		return nil, fmt.Errorf("labelwise: tensor shape %v holds %d elements; got %d", shape, product, elements)
	}
	return dims, nil
}

func (t *Tensor) message() *labelwisev1.Tensor {
	return &labelwisev1.Tensor{Dtype: t.dtype, Shape: t.shape, RawData: t.raw}
}

// slice returns rows [start, end) of axis as a new tensor; the raw bytes are shared when axis
// is 0 and gathered per outer index (over the axes before it) otherwise.
func (t *Tensor) slice(axis int, start, end int64) *Tensor {
	shape := append([]int64(nil), t.shape...)
	shape[axis] = end - start
	inner := t.elementSize()
	for _, size := range t.shape[axis+1:] {
		inner *= size
	}
	if axis == 0 {
		return &Tensor{t.dtype, shape, t.raw[start*inner : end*inner]}
	}
	outer := int64(1)
	for _, size := range t.shape[:axis] {
		outer *= size
	}
	stride := t.shape[axis] * inner
	raw := make([]byte, 0, outer*(end-start)*inner)
	for o := int64(0); o < outer; o++ {
		raw = append(raw, t.raw[o*stride+start*inner:o*stride+end*inner]...)
	}
	return &Tensor{t.dtype, shape, raw}
}

// tensorFrom wraps a tensor of a response (its bytes are shared, not copied); nil stays nil.
func tensorFrom(m *labelwisev1.Tensor) *Tensor {
	if m == nil {
		return nil
	}
	return &Tensor{m.GetDtype(), m.GetShape(), m.GetRawData()}
}

// elementSize is the bytes per element of the dtypes Float64s decodes (0 for the others).
func (t *Tensor) elementSize() int64 {
	switch t.dtype {
	case labelwisev1.DataType_DATA_TYPE_FLOAT64, labelwisev1.DataType_DATA_TYPE_INT64:
		return 8
	case labelwisev1.DataType_DATA_TYPE_FLOAT32, labelwisev1.DataType_DATA_TYPE_INT32:
		return 4
	}
	return 0
}
