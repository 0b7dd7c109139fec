// Package deploy holds what it takes to run Manta outside a laptop:
// Kubernetes manifests (kubernetes/: members as a StatefulSet using
// protoactor's Kubernetes cluster provider with its RBAC, a headless
// Service, MinIO as the model store and Redis for stream ingestion,
// configured through MANTA_* environment variables), a Prometheus scrape
// configuration with alert rules and their unit tests (prometheus/), a
// Grafana dashboard (grafana/) and the member image's Dockerfile.
//
// The files are embedded (Files) so that tools can print them, and the
// package's tests validate them: every manifest decodes strictly into the
// Kubernetes API types, the Prometheus configuration and rules pass
// promtool, the rules' unit tests pass, and a real Prometheus server
// scrapes a running member and answers every dashboard query.
//
//	kubectl create namespace manta
//	kubectl apply -n manta -k deploy/kubernetes
package deploy

import "embed"

// Files are the deployment files, by path relative to deploy/
// (kubernetes/manta.yaml, prometheus/alerts.yml, grafana/manta-dashboard.json, ...).
//
//go:embed kubernetes prometheus grafana Dockerfile
var Files embed.FS
