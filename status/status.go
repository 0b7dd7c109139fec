// Package status holds the status of a Manta cluster's members: what the
// SDK gathers (manta.Client.Status, whose MemberInfo and Status are these
// types; GET /v1/status) and what ops serves beside each member's details
// (/v1/members, /v1/models/{id}, the status page). Both import it, so ops
// takes the SDK's answer as it is, with neither an import of the SDK nor a
// JSON round trip.
//
//	st, err := client.Status(ctx) // *status.Cluster
//	for _, m := range st.Members {
//		fmt.Println(m.ID, m.UsedBytes, m.BudgetBytes, m.ActiveModels)
//	}
package status

// Member is one member's status.
type Member struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	HTTP         string   `json:"http,omitempty"`
	BudgetBytes  int64    `json:"budget_bytes"`
	UsedBytes    int64    `json:"used_bytes"`
	PinnedBytes  int64    `json:"pinned_bytes"`
	HighWater    int64    `json:"high_water_bytes"`
	ModelsLoaded int      `json:"models_loaded"`
	ActiveModels []string `json:"active_models"`
	Loads        int64    `json:"loads"`
	Evictions    int64    `json:"evictions"`
	Activations  int64    `json:"activations"`
	Goroutines   int64    `json:"goroutines"`
	OpenFDs      int64    `json:"open_fds"`
	// Error says why the member did not answer (its other figures are
	// then zero).
	Error string `json:"error,omitempty"`
}

// Cluster is the cluster's status as seen from one client: every member
// the cluster provider lists, sorted by address.
type Cluster struct {
	Members []Member `json:"members"`
}
