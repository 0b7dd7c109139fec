package manta

import "github.com/manta-ml/manta/status"

// MemberInfo is one member's status (package status holds the type, which
// ops shares).
type MemberInfo = status.Member

// Status is the cluster's status as seen from this client.
type Status = status.Cluster
