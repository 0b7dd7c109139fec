package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelsPushTrees: `manta models push` knows the xgboost runtime (the
// command links modelhost/trees), refuses a model file that does not parse
// naming the file and the parser's message, and reports the loaded size it
// wrote to memory_bytes.
func TestModelsPushTrees(t *testing.T) {
	store := t.TempDir()
	write := func(model string) string {
		dir := t.TempDir()
		for name, body := range map[string]string{
			"manifest.json": `{"id":"cli-xgb","runtime":"xgboost","entrypoint":"model.json"}`,
			"model.json":    model,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	code, out, errOut := runCLI("models", "push", write(`{"learner":{"objective":`), "--store", store)
	if code != exitFail || !strings.Contains(errOut, "bad_input") || !strings.Contains(errOut, "model.json: decode: unexpected end of JSON input") {
		t.Fatalf("push of a truncated model: %d %s %s", code, out, errOut)
	}
	model := `{"learner":{"learner_model_param":{"base_score":"5E-1","num_class":"0","num_feature":"1"},
	 "objective":{"name":"reg:squarederror"},"gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[
	 {"left_children":[-1],"right_children":[-1],"split_indices":[0],"split_conditions":[1.5],"default_left":[0]}]}}}}`
	code, out, errOut = runCLI("models", "push", write(model), "--store", store)
	if code != exitOK || !strings.Contains(out, "pushed cli-xgb version 1") || !strings.Contains(out, "memory ") {
		t.Fatalf("push: %d %s %s", code, out, errOut)
	}
}
