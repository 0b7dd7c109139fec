package modelhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/jsonscan"
)

// LinearRuntimeName is the name of the built-in linear runtime.
const LinearRuntimeName = "linear"

// LinearSpec is the content of a linear model's entrypoint file (docs/ARCHITECTURE.md
// "The linear format"):
//
//	{"weights": [w1, ..., wn], "bias": b, "link": "identity" | "logistic"}
//
// An empty link means identity.
type LinearSpec struct {
	Weights []float64 `json:"weights"`
	Bias    float64   `json:"bias"`
	Link    string    `json:"link,omitempty"`
}

// Link functions of the linear format.
const (
	LinkIdentity = "identity"
	LinkLogistic = "logistic"
)

// linearRuntime loads linear models (registered as "linear").
type linearRuntime struct{}

func init() { RegisterRuntime(LinearRuntimeName, linearRuntime{}) }

// Load reads the entrypoint file (already verified) and builds the model.
func (linearRuntime) Load(ctx context.Context, m *Manifest, dir string) (Model, error) {
	if err := ValidPath(m.Entrypoint); err != nil {
		return nil, loadFailed(fmt.Errorf("linear %s v%s: entrypoint: %w", m.ID, m.Version, err))
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.Entrypoint)))
	if err != nil {
		return nil, loadFailed(fmt.Errorf("linear %s v%s: %w", m.ID, m.Version, err))
	}
	spec, err := ParseLinearSpec(b)
	if err != nil {
		return nil, loadFailed(fmt.Errorf("linear %s v%s: %s: %w", m.ID, m.Version, m.Entrypoint, err))
	}
	lm, err := newLinear(spec)
	if err != nil {
		return nil, loadFailed(fmt.Errorf("linear %s v%s: %s: %w", m.ID, m.Version, m.Entrypoint, err))
	}
	lm.name = m.ID
	return lm, nil
}

// ParseLinearSpec decodes a linear model file. The weights array, which can
// hold millions of numbers, is parsed by the fast float scanner; unknown
// fields are ignored.
func ParseLinearSpec(b []byte) (LinearSpec, error) {
	var raw struct {
		Weights json.RawMessage `json:"weights"`
		Bias    *float64        `json:"bias"`
		Link    string          `json:"link"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return LinearSpec{}, fmt.Errorf("decode: %w", err)
	}
	if len(raw.Weights) == 0 {
		return LinearSpec{}, fmt.Errorf("weights missing")
	}
	// A first guess at the count avoids regrowing for big models.
	w, ok := jsonscan.ParseFloats(raw.Weights, make([]float64, 0, bytes.Count(raw.Weights, []byte{','})+1))
	if !ok {
		return LinearSpec{}, fmt.Errorf("weights: want an array of numbers")
	}
	spec := LinearSpec{Weights: w, Link: raw.Link}
	if raw.Bias != nil {
		spec.Bias = *raw.Bias
	}
	return spec, nil
}

// NewLinearModel builds a linear model from a spec (as the "linear" runtime
// does from a file): for tests, benchmarks and Go code that has weights in
// hand.
func NewLinearModel(spec LinearSpec) (Model, error) {
	lm, err := newLinear(spec)
	if err != nil {
		return nil, err
	}
	return lm, nil
}

func newLinear(spec LinearSpec) (*linearModel, error) {
	lm := &linearModel{weights: spec.Weights, bias: spec.Bias}
	switch spec.Link {
	case "", LinkIdentity:
	case LinkLogistic:
		lm.logistic = true
	default:
		return nil, fmt.Errorf("unknown link %q (want %q or %q)", spec.Link, LinkIdentity, LinkLogistic)
	}
	if math.IsNaN(spec.Bias) || math.IsInf(spec.Bias, 0) {
		return nil, fmt.Errorf("bias is not finite")
	}
	return lm, nil
}

// linearModel is a loaded linear model. It is immutable, so Predict may run
// on many goroutines at once.
type linearModel struct {
	name     string
	weights  []float64
	bias     float64
	logistic bool
}

// MemoryBytes is the weights' backing array plus the model struct.
func (m *linearModel) MemoryBytes() int64 {
	return int64(8*cap(m.weights)) + int64(unsafe.Sizeof(*m))
}

func (m *linearModel) Close() error { return nil }

// Predict answers each input independently: {"features":[...]} gets
// {"prediction":y}, and {"features":[[...],...]} gets {"predictions":[...]}.
// A bad input fails only its own row (Output.Err wraps api.ErrBadInput).
// The context is not consulted: a row takes well under a microsecond for
// small models.
func (m *linearModel) Predict(_ context.Context, batch []Input) ([]Output, error) {
	out := make([]Output, len(batch))
	// One buffer holds every answer of the batch (one allocation, not one
	// per row); each Payload is capped so appending to it cannot clobber
	// its neighbour.
	buf := make([]byte, 0, 40*len(batch))
	for i := range batch {
		if ct := batch[i].ContentType; ct != "" && !isJSONContentType(ct) {
			out[i].Err = m.badInput("content type %q: want %s", ct, ContentTypeJSON)
			continue
		}
		start := len(buf)
		next, err := m.appendPredict(buf, batch[i].Payload)
		if err != nil {
			out[i].Err = err
			continue
		}
		buf = next
		out[i] = Output{Payload: buf[start:len(buf):len(buf)], ContentType: ContentTypeJSON}
	}
	return out, nil
}

func isJSONContentType(ct string) bool {
	if !strings.HasPrefix(ct, ContentTypeJSON) {
		return false
	}
	rest := ct[len(ContentTypeJSON):]
	return rest == "" || rest[0] == ';' || rest[0] == ' '
}

func (m *linearModel) badInput(format string, args ...any) error {
	return fmt.Errorf("%w: linear %s: %s", api.ErrBadInput, m.name, fmt.Sprintf(format, args...))
}

var featuresKey = []byte(`"features"`)

// predict handles one payload. The fast path reads the exact shape
// {"features":[...]} or {"features":[[...],...]} (white space allowed),
// computing the dot product while scanning; anything else (other keys, key
// escapes, a different case) goes through encoding/json, so the accepted
// language is encoding/json's, minus nulls inside the features.
func (m *linearModel) predict(p []byte) ([]byte, error) { return m.appendPredict(nil, p) }

// appendPredict appends the answer to p to dst.
func (m *linearModel) appendPredict(dst, p []byte) ([]byte, error) {
	i := jsonscan.SkipSpace(p, 0)
	if i < len(p) && p[i] == '{' {
		i = jsonscan.SkipSpace(p, i+1)
		if bytes.HasPrefix(p[i:], featuresKey) {
			i = jsonscan.SkipSpace(p, i+len(featuresKey))
			if i < len(p) && p[i] == ':' {
				if out, j, ok, err := m.predictValue(dst, p, i+1); ok {
					j = jsonscan.SkipSpace(p, j)
					if j < len(p) && p[j] == '}' && jsonscan.SkipSpace(p, j+1) == len(p) {
						return out, err
					}
				}
			}
		}
	}
	return m.appendPredictSlow(dst, p)
}

// predictValue reads the features value at p[i]: an array of numbers or an
// array of arrays of numbers, and answers it. ok false is a syntax error
// (the caller falls back to the slow path for its message); err is a
// well-formed but wrong request (feature count), valid only if what follows
// the value turns out well-formed too.
func (m *linearModel) predictValue(dst, p []byte, i int) (out []byte, next int, ok bool, err error) {
	i = jsonscan.SkipSpace(p, i)
	if i >= len(p) || p[i] != '[' {
		return nil, i, false, nil
	}
	k := jsonscan.SkipSpace(p, i+1)
	if k < len(p) && p[k] == '[' {
		return m.predictRows(dst, p, k)
	}
	sum, n, j, ok := jsonscan.Dot(p, i, m.weights)
	if !ok {
		return nil, j, false, nil
	}
	if n != len(m.weights) {
		return nil, j, true, m.badInput("features: got %d values, want %d", n, len(m.weights))
	}
	y, err := m.link(m.bias + sum)
	if err != nil {
		return nil, j, true, err
	}
	out = append(dst, `{"prediction":`...)
	out = strconv.AppendFloat(out, y, 'g', -1, 64)
	return append(out, '}'), j, true, nil
}

// predictRows reads the rows of [[...],[...],...], p[i] being the first
// row's '['.
func (m *linearModel) predictRows(dst, p []byte, i int) (out []byte, next int, ok bool, err error) {
	out = append(dst, `{"predictions":[`...)
	for row := 0; ; row++ {
		sum, n, j, ok := jsonscan.Dot(p, i, m.weights)
		if !ok {
			return nil, j, false, nil
		}
		if err == nil {
			if n != len(m.weights) {
				err = m.badInput("features[%d]: got %d values, want %d", row, n, len(m.weights))
			} else if y, lerr := m.link(m.bias + sum); lerr != nil {
				err = lerr
			} else {
				if row > 0 {
					out = append(out, ',')
				}
				out = strconv.AppendFloat(out, y, 'g', -1, 64)
			}
		}
		i = jsonscan.SkipSpace(p, j)
		if i >= len(p) {
			return nil, i, false, nil
		}
		switch p[i] {
		case ',':
			i = jsonscan.SkipSpace(p, i+1)
		case ']':
			if err != nil {
				return nil, i + 1, true, err
			}
			return append(out, "]}"...), i + 1, true, nil
		default:
			return nil, i, false, nil
		}
	}
}

func (m *linearModel) link(y float64) (float64, error) {
	if m.logistic {
		y = 1 / (1 + math.Exp(-y))
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return 0, m.badInput("prediction is not finite")
	}
	return y, nil
}

// predictSlow decodes the payload with encoding/json, then the features
// value with the strict array scanner.
func (m *linearModel) predictSlow(p []byte) ([]byte, error) { return m.appendPredictSlow(nil, p) }

func (m *linearModel) appendPredictSlow(dst, p []byte) ([]byte, error) {
	var req struct {
		Features json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(p, &req); err != nil {
		return nil, m.badInput("decode: %v", err)
	}
	if len(req.Features) == 0 {
		return nil, m.badInput(`missing "features"`)
	}
	out, j, ok, err := m.predictValue(dst, req.Features, 0)
	if !ok || jsonscan.SkipSpace(req.Features, j) != len(req.Features) {
		return nil, m.badInput(`"features": want an array of numbers or an array of arrays of numbers`)
	}
	return out, err
}

// Interface guards.
var (
	_ Runtime = linearRuntime{}
	_ Model   = (*linearModel)(nil)
)
