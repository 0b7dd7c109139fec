// Package ops is how a Manta member is operated: Prometheus metrics, the
// Open Inference Protocol v2 REST endpoints, queryable cluster and model
// state, the status page, and logging helpers.
//
// Metrics live on their own prometheus.Registry (NewMetrics). Per-model
// series are fed by hooks installed on the member's actors.Host
// (InstallHost, or BatchHook/ErrorHook/ActivateHook/DeactivateHook one by
// one) and its modelhost.Cache (CacheHook as CacheConfig.OnEvent);
// per-member gauges are read at scrape time (AttachMember). The model label
// is capped (WithMaxModels; past the cap models share "other"), and other
// parts of Manta add their collectors with Register, using ModelLabel for
// per-model labels.
//
// Server holds the HTTP endpoints over a Backend (*manta.Client is one):
// /v2/... (Open Inference Protocol: health, model metadata and readiness,
// infer with the tabular mapping of docs/ARCHITECTURE.md), /v1/members and /v1/member
// (members with memory, active models and per-model stats),
// /v1/models/{id} (ModelHandler), /metrics and the status page at /. It
// does not listen; Register mounts it on a mux:
//
//	m, _ := ops.NewMetrics()
//	m.InstallHost(client.Host()) // before the member serves requests
//	_ = m.AttachMember(client.Host(), client.Cache())
//	s, _ := ops.NewServer(client, ops.WithMetrics(m),
//		ops.WithMember(client.Host(), client.Cache()), ops.WithStatus(client.Status))
//	mux := http.NewServeMux()
//	s.Register(mux)
//	mux.Handle("GET /v1/models/{id}", s.ModelHandler())
//	http.ListenAndServe(addr, ops.RequestID(logger, mux))
//
// NewLogger builds a slog logger (text or JSON, a level) that redacts
// secrets (RedactAttr, over internal/redact) and adds the request id that the
// RequestID middleware puts in each request's context.
package ops
