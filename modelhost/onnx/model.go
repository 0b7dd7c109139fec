package onnx

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

// DefaultMaxBatch is the batch size the memory bound assumes when the
// manifest's batch.max_size is not set: the model actor's default.
const DefaultMaxBatch = 64

// Model is a loaded ONNX graph. It is immutable once loaded (its run
// buffers are pooled), so Predict may run on many goroutines at once.
type Model struct {
	where string // "onnx eta-eu v3", for messages
	g     *graph
	eng   engine
	// answered: the graph outputs in the answer (all of them, or the one
	// named by the manifest option "output"), with their JSON-quoted names,
	// values per row and per-row shapes.
	answered []int
	quoted   []string
	perRow   []int
	rowShape [][]int
	memory   int64
}

// Options of a manifest the runtime reads.
const (
	// OptionOutput names the graph output to answer with when the graph has
	// several (default: all of them, by name).
	OptionOutput = "output"
)

// newModel checks the graph's shapes at one and two rows, finds each
// output's per-row shape and computes the memory bound for maxBatch rows.
func newModel(g *graph, where, output string, maxBatch int) (*Model, error) {
	m := &Model{where: where, g: g}
	if g.double {
		m.eng = newProgram[float64](g)
	} else {
		m.eng = newProgram[float32](g)
	}
	p1, err := g.plan(1)
	if err != nil {
		return nil, err
	}
	if g.batched {
		// The batch dimension must reach every output as its first
		// dimension; a graph that folds it away (a Reshape to a fixed
		// size) is run row by row instead.
		p2, err := g.plan(2)
		if err != nil || !scalesWithBatch(g, p1, p2) {
			g.batched = false
			g.lead1 = true
		}
	}
	for o, id := range g.outputs {
		if output != "" && g.names[o] != output {
			continue
		}
		s := p1.shapes[id]
		if len(s) > 0 && s[0] == 1 && (g.batched || g.lead1) {
			s = s[1:]
		}
		n, _ := numel(s)
		q, _ := json.Marshal(g.names[o])
		m.answered = append(m.answered, o)
		m.quoted = append(m.quoted, string(q))
		m.perRow = append(m.perRow, n)
		m.rowShape = append(m.rowShape, s)
	}
	if len(m.answered) == 0 {
		return nil, fmt.Errorf("option %s: the graph has no output %q (outputs: %q)", OptionOutput, output, g.names)
	}
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	planned := 1
	if g.batched {
		planned = maxBatch
	}
	pb, err := g.plan(planned)
	if err != nil {
		return nil, fmt.Errorf("at batch %d: %w", planned, err)
	}
	es := int64(m.eng.elemSize())
	arena := int64(pb.arena) * es
	if arena > maxArenaBytes {
		return nil, fmt.Errorf("intermediate tensors need %d bytes at batch %d, above the %d-byte limit", arena, planned, int64(maxArenaBytes))
	}
	// The memory: the constants; one run's intermediates and converted
	// input at the largest batch; the batch's rows as float64 and the
	// outputs' float64 copies; the plans cached (one per batch size up to
	// the largest) and the graph's bookkeeping.
	perRowOut := 0
	for _, id := range g.outputs {
		n, _ := numel(pb.shapes[id])
		perRowOut += n / planned
	}
	input := int64(0)
	if !g.double {
		input = int64(planned*g.nfeat) * es
	}
	m.memory = m.eng.constBytes() + arena + input +
		8*int64(maxBatch)*int64(g.nfeat+perRowOut) +
		8*(maxCachedPlan+1) + int64(maxBatch)*planBytes(pb) +
		int64(len(g.values))*160 + int64(len(g.nodes))*96
	return m, nil
}

// scalesWithBatch says whether every output's first dimension is the batch
// at one and at two rows.
func scalesWithBatch(g *graph, p1, p2 *plan) bool {
	for _, id := range g.outputs {
		s1, s2 := p1.shapes[id], p2.shapes[id]
		if len(s1) == 0 || len(s2) != len(s1) || s1[0] != 1 || s2[0] != 2 {
			return false
		}
		for d := 1; d < len(s1); d++ {
			if s1[d] != s2[d] {
				return false
			}
		}
	}
	return true
}

// NumFeatures is the number of values a row must have.
func (m *Model) NumFeatures() int { return m.g.nfeat }

// Outputs names the graph outputs the model answers with.
func (m *Model) Outputs() []string {
	names := make([]string, len(m.answered))
	for i, o := range m.answered {
		names[i] = m.g.names[o]
	}
	return names
}

// Batched says whether rows are stacked into one run (the input's first
// dimension is symbolic) or run one by one.
func (m *Model) Batched() bool { return m.g.batched }

// MemoryBytes is the constants' bytes plus the bound on one run's
// intermediate buffers at the manifest's batch.max_size (default 64),
// computed at load.
func (m *Model) MemoryBytes() int64 { return m.memory }

// Close releases nothing: the model is plain Go memory.
func (m *Model) Close() error { return nil }

type batchBufs struct {
	rows []float64
	ok   []bool
	outs [][]float64
}

var bufPool = sync.Pool{New: func() any { return new(batchBufs) }}

// Predict parses every row, evaluates the valid ones in one graph run
// (rows stacked on the batch dimension; one run per row when the graph has
// a fixed batch of 1), then writes the answers. A bad row fails only
// itself (Output.Err wraps api.ErrBadInput). The context is not consulted:
// a batch of a tabular graph takes microseconds.
func (m *Model) Predict(_ context.Context, batch []modelhost.Input) ([]modelhost.Output, error) {
	out := make([]modelhost.Output, len(batch))
	bufs := bufPool.Get().(*batchBufs)
	defer bufPool.Put(bufs)
	rows := bufs.rows[:0]
	ok := append(bufs.ok[:0], make([]bool, len(batch))...)
	n := 0
	for i := range batch {
		var err error
		before := len(rows)
		if rows, err = m.parseRow(rows, batch[i]); err != nil {
			rows = rows[:before]
			out[i].Err = err
			continue
		}
		ok[i] = true
		n++
	}
	outs := bufs.outs
	if len(outs) != len(m.g.outputs) {
		outs = make([][]float64, len(m.g.outputs))
	}
	for o := range outs {
		outs[o] = outs[o][:0]
	}
	var err error
	if n > 0 {
		if m.g.batched {
			outs, err = m.eng.run(rows, n, outs)
		} else {
			for r := 0; r < n && err == nil; r++ {
				outs, err = m.eng.run(rows[r*m.g.nfeat:(r+1)*m.g.nfeat], 1, outs)
			}
		}
	}
	bufs.rows, bufs.ok, bufs.outs = rows, ok, outs
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", api.ErrInternal, m.where, err)
	}
	buf := make([]byte, 0, n*(20+16*m.totalPerRow()))
	r := 0
	for i := range batch {
		if !ok[i] {
			continue
		}
		start := len(buf)
		buf, err = m.appendAnswer(buf, outs, r)
		r++
		if err != nil {
			buf = buf[:start]
			out[i].Err = err
			continue
		}
		out[i] = modelhost.Output{Payload: buf[start:len(buf):len(buf)], ContentType: modelhost.ContentTypeJSON}
	}
	return out, nil
}

func (m *Model) totalPerRow() int {
	t := 0
	for _, n := range m.perRow {
		t += n
	}
	return t
}

// appendAnswer writes row r's answer: {"prediction": v} with one answered
// output, {"prediction": {"name": v, ...}} with several; v is a number
// when the output has one value per row, else an array shaped as the
// output's dimensions after the batch.
func (m *Model) appendAnswer(dst []byte, outs [][]float64, r int) ([]byte, error) {
	dst = append(dst, `{"prediction":`...)
	several := len(m.answered) > 1
	if several {
		dst = append(dst, '{')
	}
	for i, o := range m.answered {
		vals := outs[o][r*m.perRow[i] : (r+1)*m.perRow[i]]
		for _, x := range vals {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return dst, m.badInput("output %s is not finite (a missing value reaches it?)", m.quoted[i])
			}
		}
		if several {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, m.quoted[i]...)
			dst = append(dst, ':')
		}
		if len(vals) == 1 {
			dst = m.appendFloat(dst, vals[0])
		} else {
			dst = m.appendNested(dst, vals, m.rowShape[i])
		}
	}
	if several {
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

func (m *Model) appendNested(dst []byte, vals []float64, shape []int) []byte {
	if len(shape) == 0 {
		return m.appendFloat(dst, vals[0])
	}
	dst = append(dst, '[')
	sub := 1
	if len(shape) > 1 {
		sub, _ = numel(shape[1:])
	}
	for i := range shape[0] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = m.appendNested(dst, vals[i*sub:(i+1)*sub], shape[1:])
	}
	return append(dst, ']')
}

// appendFloat prints a float32 graph's values with float32's shortest
// representation (they were computed in float32), a float64 graph's with
// all their digits.
func (m *Model) appendFloat(dst []byte, x float64) []byte {
	if m.g.double {
		return strconv.AppendFloat(dst, x, 'g', -1, 64)
	}
	return strconv.AppendFloat(dst, x, 'g', -1, 32)
}

func (m *Model) badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", api.ErrBadInput, m.where, fmt.Sprintf(format, args...))
}

var featuresKey = []byte(`"features"`)

// parseRow appends the features of one input to rows. The fast path reads
// the exact shape {"features":[...]} (white space allowed); anything else
// goes through encoding/json first, so the accepted language is
// encoding/json's. null is a missing value (NaN), as in the tree runtimes.
func (m *Model) parseRow(rows []float64, in modelhost.Input) ([]float64, error) {
	if ct := in.ContentType; ct != "" && !isJSON(ct) {
		return rows, m.badInput("content type %q: want %s", ct, modelhost.ContentTypeJSON)
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
	if got := len(rows) - before; got != m.g.nfeat {
		return rows[:before], m.badInput("features: got %d values, want %d", got, m.g.nfeat)
	}
	return rows, nil
}

func isJSON(ct string) bool {
	if !strings.HasPrefix(ct, modelhost.ContentTypeJSON) {
		return false
	}
	rest := ct[len(modelhost.ContentTypeJSON):]
	return rest == "" || rest[0] == ';' || rest[0] == ' '
}

// Interface guard.
var _ modelhost.Model = (*Model)(nil)
