package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/modelhost"
)

// canaryOptions are the flags of `manta models promote --if-better`.
type canaryOptions struct {
	addr   string
	share  float64
	margin float64
	wait   time.Duration
	poll   time.Duration
}

// parseShare reads --canary: "10%" or "0.1".
func parseShare(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v <= 0 || v >= 1 {
		return 0, fmt.Errorf("--canary %q: want a share between 0 and 100%% (exclusive), e.g. 10%%", s)
	}
	return v, nil
}

// versionQuality is the quality of one version in a model's quality
// report: the activation with the most joined labels for it.
func versionQuality(q *manta.ModelQuality, version string) (manta.VersionQuality, bool) {
	var best manta.VersionQuality
	found := false
	for _, v := range q.Versions {
		if v.Version == version && (!found || v.Joined > best.Joined) {
			best, found = v, true
		}
	}
	return best, found
}

// promoteIfBetter runs a conditional promotion: version serves share of
// the model's traffic beside the version served (a canary, on the member
// at addr and its replicas), until it has a full window of joined labels;
// then it becomes LATEST if its quality is not worse than the old
// version's by more than margin (relative: mae may be at most
// (1+margin)× the old one's, accuracy at least (1−margin)×), else the
// canary ends and LATEST stays. Not promoting is a failed operation
// (exit 1), so a script can tell.
func promoteIfBetter(ctx context.Context, st modelhost.Store, model, version string, o canaryOptions, stdout io.Writer) error {
	old, err := st.Latest(ctx, model)
	if err != nil {
		return err
	}
	if old == version {
		return fmt.Errorf("%s: v%s is LATEST already", model, version)
	}
	base := "http://" + o.addr + "/v1/models/" + url.PathEscape(model)
	canary := func(share float64) error {
		body, _ := json.Marshal(map[string]any{"version": version, "share": share})
		return postJSON(base+"/canary", body)
	}
	if err := canary(o.share); err != nil {
		return fmt.Errorf("%s: start the canary: %w (is `manta serve` running at %s?)", model, err, o.addr)
	}
	fmt.Fprintf(stdout, "%s: v%s serves %.4g%% of the requests beside v%s until it has a window of labels\n", model, version, 100*o.share, old)
	end := func(why string) error {
		if err := canary(0); err != nil {
			fmt.Fprintf(stdout, "%s: ending the canary: %v (it ends with the activation)\n", model, err)
		}
		return fmt.Errorf("%s: v%s not promoted: %s; LATEST stays %s", model, version, why, old)
	}
	deadline := time.Now().Add(o.wait)
	for {
		q, err := getQuality(base + "/quality")
		if err != nil {
			return end(err.Error())
		}
		nv, okN := versionQuality(q, version)
		ov, okO := versionQuality(q, old)
		if okN && nv.Window > 0 && nv.Joined >= int64(nv.Window) {
			measure := "mae"
			if _, ok := nv.Measures["mae"]; !ok {
				measure = "accuracy"
			}
			n, hasN := nv.Measures[measure]
			ov0, hasO := ov.Measures[measure]
			if !okO || !hasO || !hasN {
				return end(fmt.Sprintf("v%s has no live %s to compare with", old, measure))
			}
			better := n <= ov0*(1+o.margin)
			if measure == "accuracy" {
				better = n >= ov0*(1-o.margin)
			}
			cmp := fmt.Sprintf("%s %.4g over %d labels vs v%s's %.4g over %d (margin %.4g%%)", measure, n, nv.Joined, old, ov0, ov.Joined, 100*o.margin)
			if !better {
				return end(cmp)
			}
			if err := st.SetLatest(ctx, model, version); err != nil {
				_ = canary(0)
				return err
			}
			// roll out now (other members notice LATEST by polling); the
			// activation ends the canary when it serves the version
			if err := postJSON(base+"/reload", nil); err != nil {
				fmt.Fprintf(stdout, "%s: reload: %v (members poll the store)\n", model, err)
			}
			_ = canary(0)
			fmt.Fprintf(stdout, "%s: v%s promoted: %s; LATEST -> %s\n", model, version, cmp, version)
			return nil
		}
		if time.Now().After(deadline) {
			return end(fmt.Sprintf("%d of %d labels joined in %v", nv.Joined, nv.Window, o.wait))
		}
		select {
		case <-ctx.Done():
			return end(ctx.Err().Error())
		case <-time.After(o.poll):
		}
		// keep the canary alive on an activation that restarted
		if err := canary(o.share); err != nil {
			return end("keep the canary: " + err.Error())
		}
	}
}

func postJSON(u string, body []byte) error {
	resp, err := do("POST", u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func getQuality(u string) (*manta.ModelQuality, error) {
	resp, err := do("GET", u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("quality: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var q manta.ModelQuality
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, err
	}
	return &q, nil
}
