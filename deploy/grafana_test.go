package deploy

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func findService(objs []object, name string) (*corev1.Service, bool) {
	return find[*corev1.Service](objs, "Service", name)
}

type dashboardQuery struct {
	panel, expr string
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	b, err := fs.ReadFile(Files, "grafana/manta-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// dashboardQueries returns every panel query with Grafana's variables
// replaced as Grafana would for "All" and a 1m rate interval.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	r := strings.NewReplacer(`"$model"`, `".*"`, `"$member"`, `".*"`, "$__rate_interval", "1m", "$__interval", "15s")
	var out []dashboardQuery
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			out = append(out, dashboardQuery{panel: p.Title, expr: r.Replace(tg.Expr)})
		}
	}
	return out
}

// TestDashboard: the dashboard is well-formed: unique panel ids, every
// panel on the 24-column grid with a query (rows aside), only Manta's
// variables, and every manta_ metric it uses is one the member exports or
// another part is documented to export.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Fatalf("dashboard header %+v", d)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range []string{"datasource", "model", "member"} {
		if !vars[v] {
			t.Errorf("no variable %s", v)
		}
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q off the grid: %+v", p.Title, p.GridPos)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("panel %q: empty query or refId", p.Title)
			}
		}
	}
	if len(dashboardQueries(t)) < 15 {
		t.Errorf("only %d queries", len(dashboardQueries(t)))
	}
}
