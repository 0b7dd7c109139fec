package pyworker

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

func frameOf(b []byte) []byte { return append(appendFrameHeader(nil, len(b)), b...) }

func TestReadFrame(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 3*frameChunk+5)
	tests := []struct {
		name    string
		in      []byte
		limit   int
		want    []byte
		wantErr error // checked with errors.Is; nil means success
	}{
		{"empty stream", nil, 100, nil, io.EOF},
		{"zero-length frame", frameOf(nil), 100, []byte{}, nil},
		{"small", frameOf([]byte("abc")), 100, []byte("abc"), nil},
		{"at the limit", frameOf([]byte("abcd")), 4, []byte("abcd"), nil},
		{"over the limit", frameOf([]byte("abcde")), 4, nil, errFrameTooLarge},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 1, 2}, 1 << 20, nil, errFrameTooLarge},
		{"truncated header", []byte{0, 0}, 100, nil, io.ErrUnexpectedEOF},
		{"truncated body", frameOf([]byte("abcdef"))[:7], 100, nil, io.ErrUnexpectedEOF},
		{"larger than the buffer, in chunks", frameOf(big), 4 * frameChunk, big, nil},
		{"claims more than it holds", append(appendFrameHeader(nil, 3*frameChunk), 1, 2, 3), 4 * frameChunk, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tt.in), make([]byte, 0, 16), tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader and the response
// decoder, as the supervisor's reader does: errors, never a panic, never a
// frame over the cap, never an allocation much larger than the input.
func FuzzReadFrame(f *testing.F) {
	resp, _ := proto.Marshal(&api.WorkerResponse{Id: 3, Kind: &api.WorkerResponse_Predict{Predict: &api.WorkerPredictResult{
		Prediction: &api.Tensor{Dtype: api.DType_DTYPE_FLOAT64, Shape: []int64{1}, Data: make([]byte, 8)}}}})
	f.Add(frameOf(resp))
	f.Add(append(frameOf(resp), frameOf([]byte{0x08, 0x01})...))
	f.Add(frameOf(resp)[:9])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0x10, 0, 1})
	f.Add([]byte("garbage on stdout\n"))
	f.Add(frameOf([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}))
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		for {
			b, err := readFrame(r, buf, limit)
			if err != nil {
				if errors.Is(err, errFrameTooLarge) && !strings.Contains(err.Error(), "limit") {
					t.Fatalf("too-large error without the limit: %v", err)
				}
				return
			}
			if len(b) > limit || len(b) > len(in) {
				t.Fatalf("frame of %d bytes from %d input bytes (limit %d)", len(b), len(in), limit)
			}
			if cap(b) > 2*len(in)+frameChunk {
				t.Fatalf("allocated %d bytes for %d input bytes", cap(b), len(in))
			}
			var resp api.WorkerResponse
			if err := proto.Unmarshal(b, &resp); err != nil {
				return
			}
			if p := resp.GetPredict(); p != nil && p.Prediction != nil {
				// The output builder must reject, not index past, bad tensors.
				n := 1
				if len(p.Prediction.Shape) > 0 {
					n = int(max(min(p.Prediction.Shape[0], 64), 0))
				}
				rows := make([]int, n)
				for i := range rows {
					rows[i] = i
				}
				e := &shared{key: "fuzz@1"}
				out := make([]modelhost.Output, len(rows))
				_ = e.fill(p, rows, out)
			}
			buf = b
		}
	})
}
