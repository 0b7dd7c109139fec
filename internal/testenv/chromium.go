package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Browser is Debian's headless Chromium, run once per page load by the
// test (no long-lived browser process, no remote debugging port).
type Browser struct {
	Bin string
}

// Chromium finds Debian's chromium (/usr/bin/chromium, or chromium or
// chromium-browser on PATH or in .bin). Missing: the test is skipped, or
// fails when CI is set.
func Chromium(t testing.TB) *Browser {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, ok := LookPath(name); ok {
			return &Browser{Bin: p}
		}
	}
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() {
		return &Browser{Bin: "/usr/bin/chromium"}
	}
	Missing(t, "chromium not found (Debian package chromium)")
	return nil
}

// baseArgs are the flags of every run: headless, no sandbox (tests may run
// as root), no GPU, no network of its own beyond the page, a fresh profile.
func (b *Browser) baseArgs(profile string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--no-first-run", "--no-default-browser-check",
		"--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-features=Translate,MediaRouter,OptimizationHints",
		"--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir=" + profile,
	}
}

// run runs chromium with args against url, bounded by timeout; it returns
// stdout, and on failure an error with stderr's tail.
func (b *Browser) run(timeout time.Duration, url string, args ...string) (string, error) {
	profile, err := os.MkdirTemp("", "manta-chromium-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Bin, append(append(b.baseArgs(profile), args...), url)...)
	cmd.Env = append(os.Environ(), "HOME="+profile) // keep ~/.config/chromium and crash dumps out of the real home
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		tail := errb.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return out.String(), fmt.Errorf("testenv: chromium %s: %w\n%s", url, err, tail)
	}
	return out.String(), nil
}

// DumpDOM loads url, lets the page run for budget of virtual time (timers
// and fetches complete without waiting in real time), and returns the
// serialized DOM.
func (b *Browser) DumpDOM(url string, budget time.Duration) (string, error) {
	return b.run(90*time.Second, url, "--dump-dom", "--virtual-time-budget="+strconv.FormatInt(budget.Milliseconds(), 10))
}

// Screenshot loads url at width x height, lets it run for budget of
// virtual time and writes a PNG to file.
func (b *Browser) Screenshot(url, file string, width, height int, budget time.Duration) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	_, err = b.run(90*time.Second, url, "--screenshot="+abs,
		fmt.Sprintf("--window-size=%d,%d", width, height),
		"--virtual-time-budget="+strconv.FormatInt(budget.Milliseconds(), 10))
	if err != nil {
		return err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("testenv: chromium wrote no screenshot: %w", err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("testenv: chromium wrote an empty screenshot %s", abs)
	}
	return nil
}

// WaitDOM loads url again and again until match accepts the DOM or the
// deadline passes (each load runs the page for budget of virtual time).
// It returns the last DOM and whether it matched.
func (b *Browser) WaitDOM(url string, budget, deadline time.Duration, match func(dom string) bool) (string, error) {
	end := time.Now().Add(deadline)
	var dom string
	var err error
	for {
		dom, err = b.DumpDOM(url, budget)
		if err == nil && match(dom) {
			return dom, nil
		}
		if time.Now().After(end) {
			if err == nil {
				err = fmt.Errorf("testenv: page %s did not show what was expected within %v", url, deadline)
			}
			return dom, err
		}
	}
}
