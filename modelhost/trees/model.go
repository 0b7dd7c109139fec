package trees

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/jsonscan"
	"github.com/manta-ml/manta/modelhost"
)

// Kind is what a tree model answers.
type Kind int

// Kinds of models.
const (
	// Regressor answers {"prediction": y}.
	Regressor Kind = iota
	// Binary answers {"prediction": 0|1, "probabilities": [1-p, p]}; its
	// evaluator writes p.
	Binary
	// Multiclass answers {"prediction": k, "probabilities": [p0, ...]}; its
	// evaluator writes every class's probability.
	Multiclass
)

// evaluator computes the answers of a batch of rows: rows holds n rows of
// nfeat values each (NaN = missing), out gets width values per row
// (1 for Regressor and Binary, the class count for Multiclass).
type evaluator interface {
	eval(rows []float64, n int, out []float64)
}

// Model is a loaded tree ensemble of either runtime: what Runtime.Load,
// ParseXGBoost and ParseLightGBM return. It is immutable, so Predict may
// run on many goroutines at once.
type Model struct {
	where  string // "xgboost eta-eu v3", for messages
	kind   Kind
	nfeat  int
	width  int  // outputs per row
	f32    bool // answers are float32 (XGBoost): printed with float32's shortest digits
	ev     evaluator
	memory int64
}

// batchBufs are Predict's scratch buffers, reused across batches.
type batchBufs struct {
	rows []float64
	out  []float64
	ok   []bool
}

var bufPool = sync.Pool{New: func() any { return new(batchBufs) }}

// Predict parses every row of the batch, evaluates the valid ones together
// (tree by tree over the rows: one pass over each tree's nodes per batch,
// which keeps a tree in cache while it serves every row), then writes the
// answers. A bad row fails only itself (Output.Err wraps api.ErrBadInput).
// The context is not consulted: a batch takes microseconds.
func (m *Model) Predict(_ context.Context, batch []Input) ([]Output, error) {
	out := make([]Output, len(batch))
	bufs := bufPool.Get().(*batchBufs)
	defer bufPool.Put(bufs)
	rows := bufs.rows[:0]
	ok := bufs.ok[:0]
	if cap(ok) < len(batch) {
		ok = make([]bool, len(batch))
	} else {
		ok = ok[:len(batch)]
		clear(ok)
	}
	n := 0
	for i := range batch {
		var err error
		before := len(rows)
		rows, err = m.parseRow(rows, batch[i])
		if err != nil {
			rows = rows[:before]
			out[i].Err = err
			continue
		}
		ok[i] = true
		n++
	}
	res := bufs.out[:0]
	if need := n * m.width; cap(res) < need {
		res = make([]float64, need)
	} else {
		res = res[:need]
	}
	if n > 0 {
		m.ev.eval(rows, n, res)
	}
	// One buffer holds every answer (one allocation); each Payload is
	// capped so appending to it cannot clobber its neighbour.
	buf := make([]byte, 0, n*(16+m.width*26))
	r := 0
	for i := range batch {
		if !ok[i] {
			continue
		}
		start := len(buf)
		var err error
		buf, err = m.appendAnswer(buf, res[r*m.width:(r+1)*m.width])
		r++
		if err != nil {
			buf = buf[:start]
			out[i].Err = err
			continue
		}
		out[i] = Output{Payload: buf[start:len(buf):len(buf)], ContentType: ContentTypeJSON}
	}
	bufs.rows, bufs.out, bufs.ok = rows, res, ok
	return out, nil
}

// Input, Output and ContentTypeJSON are modelhost's.
type (
	Input  = modelhost.Input
	Output = modelhost.Output
)

// ContentTypeJSON is the content type of inputs and answers.
const ContentTypeJSON = modelhost.ContentTypeJSON

func (m *Model) badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", api.ErrBadInput, m.where, fmt.Sprintf(format, args...))
}

var featuresKey = []byte(`"features"`)

// parseRow appends the features of one input to rows. The fast path reads
// the exact shape {"features":[...]} (white space allowed); anything else
// goes through encoding/json first, so the accepted language is
// encoding/json's.
func (m *Model) parseRow(rows []float64, in Input) ([]float64, error) {
	if ct := in.ContentType; ct != "" && !isJSON(ct) {
		return rows, m.badInput("content type %q: want %s", ct, ContentTypeJSON)
	}
	p := in.Payload
	before := len(rows)
	i := jsonscan.SkipSpace(p, 0)
	if i < len(p) && p[i] == '{' {
		i = jsonscan.SkipSpace(p, i+1)
		if bytes.HasPrefix(p[i:], featuresKey) {
			i = jsonscan.SkipSpace(p, i+len(featuresKey))
			if i < len(p) && p[i] == ':' {
				out, j, ok := jsonscan.AppendFloatsNaN(rows, p, i+1)
				if ok {
					j = jsonscan.SkipSpace(p, j)
					if j < len(p) && p[j] == '}' && jsonscan.SkipSpace(p, j+1) == len(p) {
						return m.checkCount(out, before)
					}
				}
				rows = out[:before]
			}
		}
	}
	var req struct {
		Features json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(p, &req); err != nil {
		return rows, m.badInput("decode: %v", err)
	}
	if len(req.Features) == 0 {
		return rows, m.badInput(`missing "features"`)
	}
	out, j, ok := jsonscan.AppendFloatsNaN(rows, req.Features, 0)
	if !ok || jsonscan.SkipSpace(req.Features, j) != len(req.Features) {
		return out[:before], m.badInput(`"features": want one row: an array of numbers and nulls (null = missing)`)
	}
	return m.checkCount(out, before)
}

func (m *Model) checkCount(rows []float64, before int) ([]float64, error) {
	if got := len(rows) - before; got != m.nfeat {
		return rows[:before], m.badInput("features: got %d values, want %d", got, m.nfeat)
	}
	return rows, nil
}

func isJSON(ct string) bool {
	if !strings.HasPrefix(ct, ContentTypeJSON) {
		return false
	}
	rest := ct[len(ContentTypeJSON):]
	return rest == "" || rest[0] == ';' || rest[0] == ' '
}

// appendAnswer writes one row's answer. Values are float32 in both
// libraries' outputs (XGBoost computes in float32), so they are printed
// with float32's shortest representation for XGBoost; LightGBM's doubles
// keep all their digits.
func (m *Model) appendAnswer(dst []byte, v []float64) ([]byte, error) {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			// JSON has no such number; the model, not the row, is at fault
			// (an exp transform overflowing, say).
			return dst, fmt.Errorf("%w: %s: the model's answer %v is not a finite number", api.ErrInternal, m.where, x)
		}
	}
	switch m.kind {
	case Binary:
		p := v[0]
		class := 0
		if p > 0.5 { // as XGBClassifier.predict and LightGBM's predict
			class = 1
		}
		dst = append(dst, `{"prediction":`...)
		dst = strconv.AppendInt(dst, int64(class), 10)
		dst = append(dst, `,"probabilities":[`...)
		dst = m.appendFloat(dst, 1-p)
		dst = append(dst, ',')
		dst = m.appendFloat(dst, p)
		return append(dst, "]}"...), nil
	case Multiclass:
		best := 0
		for k := range v {
			if v[k] > v[best] {
				best = k
			}
		}
		dst = append(dst, `{"prediction":`...)
		dst = strconv.AppendInt(dst, int64(best), 10)
		dst = append(dst, `,"probabilities":[`...)
		for k, x := range v {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = m.appendFloat(dst, x)
		}
		return append(dst, "]}"...), nil
	default:
		dst = append(dst, `{"prediction":`...)
		dst = m.appendFloat(dst, v[0])
		return append(dst, '}'), nil
	}
}

func (m *Model) appendFloat(dst []byte, x float64) []byte {
	if m.f32 {
		return strconv.AppendFloat(dst, float64(float32(x)), 'g', -1, 32)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 64)
}

// MemoryBytes is the loaded structure: nodes × node size, leaf values and
// the per-tree bookkeeping, computed at load.
func (m *Model) MemoryBytes() int64 { return m.memory }

// Close releases nothing: the model is plain Go memory.
func (m *Model) Close() error { return nil }

// Kind says whether the model is a regressor or a classifier.
func (m *Model) Kind() Kind { return m.kind }

// NumFeatures is the number of values a row must have.
func (m *Model) NumFeatures() int { return m.nfeat }

// Interface guard.
var _ modelhost.Model = (*Model)(nil)
