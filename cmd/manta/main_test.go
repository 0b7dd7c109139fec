package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/testenv"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"predict", "only-model"},
		{"predict", "m", "{not json"},
		{"models"},
		{"models", "promote", "m"},
		{"serve", "--budget", "lots"},
		{"serve", "--cluster", "zookeeper"},
		{"models", "list", "--nope"},
	} {
		code, _, errOut := runCLI(args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
}

func writeModelDir(t *testing.T, weights string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"weights":`+weights+`,"bias":1,"link":"identity"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"id":"cli-model","runtime":"linear","entrypoint":"model.json"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestModelsPushListPromoteRollback(t *testing.T) {
	store := t.TempDir()
	for _, w := range []string{"[1,2]", "[10,20]"} {
		code, out, errOut := runCLI("models", "push", writeModelDir(t, w), "--store", store)
		if code != exitOK || !strings.Contains(out, "pushed cli-model") {
			t.Fatalf("push: %d %s %s", code, out, errOut)
		}
	}
	code, out, _ := runCLI("models", "versions", "cli-model", "--store", store)
	if code != exitOK || !strings.Contains(out, "1") || !strings.Contains(out, "2") {
		t.Fatalf("versions: %d %s", code, out)
	}
	code, out, _ = runCLI("models", "list", "--store", store, "--json")
	var rows []map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["latest"] != "2" {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, errOut := runCLI("models", "rollback", "cli-model", "--store", store); code != exitOK || !strings.Contains(out, "2 -> 1") {
		t.Fatalf("rollback: %d %s %s", code, out, errOut)
	}
	if code, _, _ := runCLI("models", "rollback", "cli-model", "--store", store); code != exitFail {
		t.Fatalf("a second rollback below version 1 should fail with exit 1, got %d", code)
	}
	if code, out, _ := runCLI("models", "promote", "cli-model", "2", "--store", store); code != exitOK || !strings.Contains(out, "LATEST -> 2") {
		t.Fatalf("promote: %d %s", code, out)
	}
	if code, _, _ := runCLI("models", "promote", "cli-model", "9", "--store", store); code != exitFail {
		t.Fatalf("promote of a missing version should fail with exit 1, got %d", code)
	}
	// a directory without a manifest is refused with a clear error
	code, _, errOut := runCLI("models", "push", t.TempDir(), "--store", store)
	if code != exitFail || !strings.Contains(errOut, "manifest") {
		t.Fatalf("push of an empty dir: %d %s", code, errOut)
	}
}

// The command end to end: serve a store, predict and status over HTTP.
func TestServePredictStatus(t *testing.T) {
	testenv.SkipShort(t, "builds and runs the binary")
	store := t.TempDir()
	if code, _, errOut := runCLI("models", "push", writeModelDir(t, "[1,2]"), "--store", store); code != exitOK {
		t.Fatal(errOut)
	}
	bin := filepath.Join(t.TempDir(), "manta")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--store", store, "--http", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	addr := ""
	deadline := time.Now().Add(60 * time.Second)
	for addr == "" && time.Now().Before(deadline) && sc.Scan() {
		if i := strings.Index(sc.Text(), "http://"); i >= 0 {
			addr = strings.Fields(sc.Text()[i+7:])[0]
		}
	}
	if addr == "" {
		t.Fatal("serve did not print its address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	code, out, errOut := runCLI("predict", "--addr", addr, "cli-model", `{"features":[1,1]}`)
	if code != exitOK {
		t.Fatalf("predict: %d %s %s", code, out, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res["model"] != "cli-model" || res["version"] != "1" || res["served_by"] == "" || res["latency"] == "" {
		t.Fatalf("predict printed %s", out)
	}
	if o, _ := json.Marshal(res["output"]); string(o) != `{"prediction":4}` {
		t.Fatalf("output %s", o)
	}
	code, _, errOut = runCLI("predict", "--addr", addr, "no-such", `{"features":[1]}`)
	if code != exitFail || !strings.Contains(errOut, "not_found") {
		t.Fatalf("predict of a missing model: %d %s", code, errOut)
	}
	code, out, _ = runCLI("status", "--addr", addr)
	if code != exitOK || !strings.Contains(out, "cli-model") {
		t.Fatalf("status: %d %s", code, out)
	}
	code, out, errOut = runCLI("where", "--addr", addr, "cli-model")
	if code != exitOK || !strings.Contains(out, "cli-model") {
		t.Fatalf("where: %d %s %s", code, out, errOut)
	}
}

// `manta models push/list/versions/promote/rollback` against a real MinIO,
// credentials from the environment (never from the URL).
func TestModelsOnMinIO(t *testing.T) {
	mi := testenv.StartMinIO(t)
	t.Setenv("MINIO_ROOT_USER", mi.AccessKey)
	t.Setenv("MINIO_ROOT_PASSWORD", mi.SecretKey)
	store := "s3://models/prod?endpoint=" + mi.Endpoint + "&secure=false&cache_dir=" + t.TempDir()
	for _, w := range []string{"[1,2]", "[10,20]"} {
		code, out, errOut := runCLI("models", "push", writeModelDir(t, w), "--store", store)
		if code != exitOK || !strings.Contains(out, "pushed cli-model") {
			t.Fatalf("push: %d %s %s", code, out, errOut)
		}
	}
	code, out, errOut := runCLI("models", "versions", "cli-model", "--store", store)
	if code != exitOK || !strings.Contains(out, "2") {
		t.Fatalf("versions: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runCLI("models", "rollback", "cli-model", "--store", store); code != exitOK || !strings.Contains(out, "2 -> 1") {
		t.Fatalf("rollback: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI("models", "list", "--store", store, "--json")
	var rows []map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0]["latest"] != "1" {
		t.Fatalf("list: %d %s", code, out)
	}
	if strings.Contains(out+errOut, mi.SecretKey) {
		t.Fatal("the secret key was printed")
	}
}

// `manta certs` writes a CA and member certificates that serve accepts.
func TestCertsAndTLSServe(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI("certs", dir, "--members", "a,b")
	if code != exitOK || !strings.Contains(out, "--tls-ca") {
		t.Fatalf("certs: %d %s %s", code, out, errOut)
	}
	for _, f := range []string{"ca.pem", "a.pem", "a-key.pem", "b.pem", "b-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := f.register(fs); err != nil {
		t.Fatal(err)
	}
	if _, err := parseInterleaved(fs, []string{"--tls-cert", filepath.Join(dir, "a.pem"), "--store", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.config(); err == nil {
		t.Fatal("a TLS cert without key and CA was accepted")
	}
}

// Security flags reach the configs: --protect-metrics, and the Redis
// password from a file (the URL names only the user).
func TestServeSecurityFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pw, []byte("flag-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	if err := f.register(fs); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--store", t.TempDir(), "--http-token", "tok", "--protect-metrics", "--max-payload", "2MiB",
		"--redis", "redis://manta@127.0.0.1:6379/0", "--redis-password-file", pw}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPayloadBytes != 2<<20 {
		t.Errorf("max payload %d", cfg.MaxPayloadBytes)
	}
	if !cfg.ProtectMetrics || cfg.HTTPToken != "tok" {
		t.Errorf("protect metrics %v, token %q", cfg.ProtectMetrics, cfg.HTTPToken)
	}
	rc, err := f.routerConfig("m")
	if err != nil {
		t.Fatal(err)
	}
	opt, err := rc.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if opt.Username != "manta" || opt.Password != "flag-s3cret" {
		t.Errorf("redis user %q, password from the file: %v", opt.Username, opt.Password == "flag-s3cret")
	}
}

// Every command answers -h and --help with its usage on stdout and exit 0;
// an unknown flag prints the same usage to stderr and exits 2.
func TestEveryCommandHasHelp(t *testing.T) {
	cmds := [][]string{
		{"serve"}, {"models", "push"}, {"models", "list"}, {"models", "versions"},
		{"models", "promote"}, {"models", "rollback"}, {"models", "rm"},
		{"predict"}, {"status"}, {"reload"}, {"where"}, {"quality"}, {"certs"}, {"demo"},
		{"bench", "sdk"}, {"bench", "placement"}, {"bench", "cluster"}, {"lab"},
	}
	for _, cmd := range cmds {
		for _, h := range []string{"-h", "--help"} {
			code, out, errOut := runCLI(append(append([]string{}, cmd...), h)...)
			if code != exitOK || !strings.Contains(out, "usage: manta "+cmd[0]) || errOut != "" {
				t.Errorf("%v %s: exit %d, stdout %q, stderr %q", cmd, h, code, out, errOut)
			}
		}
		if cmd[0] == "lab" {
			continue // lab's flags are single-dash Go flags with their own usage
		}
		code, out, _ := runCLI(append(append([]string{}, cmd...), "--help")...)
		if code == exitOK && !strings.Contains(out, "--") {
			t.Errorf("%v --help lists no flags:\n%s", cmd, out)
		}
		code, _, errOut := runCLI(append(append([]string{}, cmd...), "--no-such-flag")...)
		if code != exitUsage || !strings.Contains(errOut, "no-such-flag") || !strings.Contains(errOut, "usage: manta "+cmd[0]) {
			t.Errorf("%v --no-such-flag: exit %d, stderr %q", cmd, code, errOut)
		}
	}
	for _, group := range [][]string{{"models", "-h"}, {"bench", "--help"}, {"help"}, {"-h"}} {
		if code, out, _ := runCLI(group...); code != exitOK || !strings.Contains(out, "usage") {
			t.Errorf("%v: exit %d, %q", group, code, out)
		}
	}
	// Each serve flag shows its environment variable.
	_, out, _ := runCLI("serve", "--help")
	for _, want := range []string{"--store", "environment MANTA_STORE", "--port", "environment MANTA_PORT", "default 127.0.0.1:8080"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}

// A store that does not exist is an error, not an empty listing; push
// creates a directory store but never a directory named after a URL.
func TestMissingStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, args := range [][]string{
		{"models", "list", "--store", missing},
		{"models", "versions", "m", "--store", missing},
		{"models", "rollback", "m", "--store", missing},
		{"models", "rm", "m", "--store", missing},
	} {
		code, out, errOut := runCLI(args...)
		if code != exitFail || !strings.Contains(errOut, "does not exist") || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a read-only command created the store: %v", err)
	}
	dir := writeModelDir(t, "[1]")
	if code, _, errOut := runCLI("models", "push", dir, "--store", missing); code != exitOK {
		t.Fatalf("push into a new store: exit %d: %s", code, errOut)
	}
	if code, out, _ := runCLI("models", "list", "--store", missing); code != exitOK || !strings.Contains(out, "cli-model") {
		t.Fatalf("list after push: exit %d %q", code, out)
	}

	// An S3 URL store with no server behind it fails, and leaves no "s3:"
	// directory in the working directory.
	wd := t.TempDir()
	t.Chdir(wd)
	code, _, _ := runCLI("models", "push", dir, "--store", "s3://bucket/prefix?endpoint=127.0.0.1:1&secure=false")
	if code == exitOK {
		t.Fatalf("push to an unreachable S3 store succeeded")
	}
	if entries, _ := os.ReadDir(wd); len(entries) != 0 {
		t.Fatalf("push to an S3 URL created %v in the working directory", entries)
	}
}

// Serve's flags are bound to their environment variables one way: typed
// values (ports, durations, sizes, booleans) come from the environment
// parsed, the flag wins, and a value that does not parse is a usage error.
func TestServeFlagsFromEnvironment(t *testing.T) {
	t.Setenv("MANTA_PORT", "7001")
	t.Setenv("MANTA_IDLE", "90s")
	t.Setenv("MANTA_BUDGET", "1.5GiB")
	t.Setenv("MANTA_PROTECT_METRICS", "true")
	t.Setenv("MANTA_REDIS_INFLIGHT", "64")
	t.Setenv("MANTA_PPROF", "1")
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var f serveFlags
	if err := f.register(fs); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--idle", "2m"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.Port != 7001 || cfg.IdleTimeout != 2*time.Minute || cfg.BudgetBytes != 3<<29 || !cfg.ProtectMetrics || !cfg.Pprof || f.redisInflight != 64 {
		t.Fatalf("config %+v, inflight %d", cfg, f.redisInflight)
	}
	// Every serve flag has its variable, and --help says so.
	_, out, _ := runCLI("serve", "--help")
	if n := strings.Count(out, "\n  --"); n == 0 || n != strings.Count(out, "environment MANTA_") {
		t.Fatalf("serve --help: %d flags, %d with a variable:\n%s", n, strings.Count(out, "environment MANTA_"), out)
	}
	t.Setenv("MANTA_REDIS_INFLIGHT", "lots")
	if code, _, errOut := runCLI("serve"); code != exitUsage || !strings.Contains(errOut, "MANTA_REDIS_INFLIGHT") {
		t.Fatalf("a bad MANTA_REDIS_INFLIGHT: exit %d, %q", code, errOut)
	}
}
