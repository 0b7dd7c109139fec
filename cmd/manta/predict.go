package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/flagenv"
)

var httpClient = &http.Client{Timeout: 2 * time.Minute}

var tokenFlag *string

// addrFlag binds --addr and --token (and their environment variables) on fs.
func addrFlag(fs *flag.FlagSet) (*string, error) {
	addr := new(string)
	tokenFlag = new(string)
	b := flagenv.New(fs)
	b.String(tokenFlag, "token", "MANTA_TOKEN", "", "bearer token of the member's HTTP API")
	b.String(addr, "addr", "MANTA_ADDR", "127.0.0.1:8080", "HTTP address of a member")
	if err := b.Err(); err != nil {
		return nil, usageError{msg: err.Error()}
	}
	return addr, nil
}

// do sends an HTTP request to a member with the bearer token, if any.
func do(method, url string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if tokenFlag != nil && *tokenFlag != "" {
		req.Header.Set("Authorization", "Bearer "+*tokenFlag)
	}
	resp, err := httpClient.Do(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, fmt.Errorf("the member requires a bearer token: pass --token or MANTA_TOKEN")
	}
	return resp, err
}

func cmdPredict(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("predict", flag.ContinueOnError)
	addr, err := addrFlag(fs)
	if err != nil {
		return err
	}
	timeout := fs.Duration("timeout", 0, "request timeout (default: the member's)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("predict: want MODEL JSON")
	}
	if !json.Valid([]byte(pos[1])) {
		return usagef("predict: payload is not valid JSON: %s", pos[1])
	}
	url := fmt.Sprintf("http://%s/v1/models/%s/predict", *addr, pos[0])
	if *timeout > 0 {
		url += "?timeout=" + timeout.String()
	}
	start := time.Now()
	resp, err := do("POST", url, bytes.NewReader([]byte(pos[1])))
	if err != nil {
		return fmt.Errorf("predict: %w (is `manta serve` running at %s?)", err, *addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r manta.ResponseJSON
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("predict: bad answer (HTTP %d): %s", resp.StatusCode, body)
	}
	out := map[string]any{
		"output": r.Output, "model": r.ModelID, "version": r.ModelVersion, "served_by": r.ServedBy,
		"latency": time.Since(start).Round(time.Microsecond).String(), "request_id": r.RequestID,
	}
	if r.Error != nil {
		out["error"] = r.Error
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	if r.Error != nil {
		return fmt.Errorf("%s: %s", r.Error.Code, r.Error.Message)
	}
	return nil
}

func cmdReload(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	addr, err := addrFlag(fs)
	if err != nil {
		return err
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("reload: want MODEL")
	}
	resp, err := do("POST", fmt.Sprintf("http://%s/v1/models/%s/reload", *addr, pos[0]), nil)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload: HTTP %d", resp.StatusCode)
	}
	return nil
}

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	addr, err := addrFlag(fs)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	resp, err := do("GET", fmt.Sprintf("http://%s/v1/status", *addr), nil)
	if err != nil {
		return fmt.Errorf("status: %w (is `manta serve` running at %s?)", err, *addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: HTTP %d: %s", resp.StatusCode, body)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st manta.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return err
	}
	rates := map[string]float64{} // request rate per member, from the placement gossip
	if lr, err := do("GET", fmt.Sprintf("http://%s/v1/loads", *addr), nil); err == nil {
		var loads struct {
			Members []cluster.MemberLoad `json:"members"`
		}
		if lr.StatusCode == http.StatusOK && json.NewDecoder(lr.Body).Decode(&loads) == nil {
			for _, l := range loads.Members {
				rates[l.Address] = l.Rate
			}
		}
		lr.Body.Close()
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tHTTP\tUSED/BUDGET\tHIGH-WATER\tLOADED\tACTIVE\tRATE\tLOADS\tEVICTIONS\tACTIVATIONS")
	for _, m := range st.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s / %s\t%s\t%d\t%d\t%.1f/s\t%d\t%d\t%d\n", m.Address, m.HTTP, formatBytes(m.UsedBytes), formatBytes(m.BudgetBytes),
			formatBytes(m.HighWater), m.ModelsLoaded, len(m.ActiveModels), rates[m.Address], m.Loads, m.Evictions, m.Activations)
	}
	tw.Flush()
	for _, m := range st.Members {
		if len(m.ActiveModels) > 0 {
			fmt.Fprintf(stdout, "%s active: %v\n", m.Address, m.ActiveModels)
		}
		if m.Error != "" {
			fmt.Fprintf(stdout, "%s error: %s\n", m.Address, m.Error)
		}
	}
	return nil
}

func cmdWhere(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("where", flag.ContinueOnError)
	addr, err := addrFlag(fs)
	if err != nil {
		return err
	}
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("where: want MODEL")
	}
	resp, err := do("GET", fmt.Sprintf("http://%s/v1/where/%s", *addr, pos[0]), nil)
	if err != nil {
		return fmt.Errorf("where: %w (is `manta serve` running at %s?)", err, *addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("where: HTTP %d: %s", resp.StatusCode, body)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var w cluster.Where
	if err := json.Unmarshal(body, &w); err != nil {
		return err
	}
	if len(w.Activations) == 0 {
		fmt.Fprintf(stdout, "%s is not active on any member (the next request activates it)\n", w.Model)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IDENTITY\tMEMBER\tADDRESS\tHTTP")
	for _, a := range w.Activations {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Identity, a.Member, a.Address, a.HTTP)
	}
	return tw.Flush()
}
