package manta_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/testenv"
)

var (
	buildOnce sync.Once
	mantaBin  string
	buildErr  error
)

// buildManta builds the manta command once per test binary.
func buildManta(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "manta-bin-")
		if err != nil {
			buildErr = err
			return
		}
		mantaBin = filepath.Join(dir, "manta")
		out, err := exec.Command("go", "build", "-o", mantaBin, "./cmd/manta").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mantaBin
}

// memberProc is a `manta serve` process.
type memberProc struct {
	*testenv.Process
	HTTP   string
	Member string
}

// startServe starts `manta serve` with args and waits until it prints its
// HTTP address.
func startServe(t testing.TB, args ...string) *memberProc {
	t.Helper()
	bin := buildManta(t)
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "MANTA_HTTP=127.0.0.1:0")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	m := &memberProc{}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.After(60 * time.Second)
	var seen []string
	for m.HTTP == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("manta serve exited: %s", strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.HasPrefix(l, "manta: member ") {
				m.Member = strings.Fields(l)[2]
			}
			if i := strings.Index(l, "http://"); i >= 0 {
				m.HTTP = strings.Fields(l[i+len("http://"):])[0]
			}
		case <-deadline:
			t.Fatalf("manta serve did not start: %s", strings.Join(seen, "\n"))
		}
	}
	go func() {
		for range lines {
		}
	}()
	m.Process = &testenv.Process{Cmd: cmd}
	return m
}

// Two `manta serve` processes on one etcd; a client in this process reaches
// models activated on both members.
func TestEtcdTwoMembers(t *testing.T) {
	testenv.SkipShort(t, "multi-process test")
	etcd := testenv.StartEtcd(t)
	root := t.TempDir()
	for i := 0; i < 24; i++ {
		mustLinear(t, root, fmt.Sprintf("m%02d", i), "1", []float64{float64(i)}, 0)
	}
	prefix := "/manta-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	args := []string{"--cluster", "etcd", "--etcd", etcd.Endpoint, "--store", root, "--budget", "64MiB"}
	env := "MANTA_ETCD_PREFIX=" + prefix
	_ = env
	a := startServe(t, args...)
	b := startServe(t, args...)

	cfg := manta.DefaultConfig()
	cfg.Cluster = cluster.DefaultConfig()
	cfg.Cluster.Provider = cluster.ProviderEtcd
	cfg.Cluster.Etcd = []string{etcd.Endpoint}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := manta.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())

	servedBy := map[string]int{}
	waitFor(t, 30*time.Second, func() bool {
		st, err := c.Status(ctx)
		return err == nil && len(st.Members) >= 2
	}, "both members in the client's view")
	for i := 0; i < 24; i++ {
		id := fmt.Sprintf("m%02d", i)
		res, err := c.Model(id).Predict(ctx, []byte(`{"features":[2]}`), manta.WithTimeout(20*time.Second)).Get(ctx)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := prediction(t, res.Output); got != float64(2*i) {
			t.Fatalf("%s: prediction %v", id, got)
		}
		servedBy[res.ServedBy]++
	}
	t.Logf("served by: %v (members %s, %s)", servedBy, a.Member, b.Member)
	if len(servedBy) != 2 || servedBy[a.Member] == 0 || servedBy[b.Member] == 0 {
		t.Fatalf("models were served by %v, want both members %s and %s", servedBy, a.Member, b.Member)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, m := range st.Members {
		active += len(m.ActiveModels)
	}
	if active != 24 {
		t.Fatalf("status shows %d active models across members, want 24: %+v", active, st)
	}
}
