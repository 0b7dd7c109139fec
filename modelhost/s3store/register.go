package s3store

import (
	"context"
	"net/url"

	"github.com/manta-ml/manta/modelhost"
)

// init makes modelhost.OpenStore("s3://bucket/prefix?endpoint=…") open a
// Store (see ParseURL for the parameters).
func init() {
	modelhost.RegisterStore("s3", func(ctx context.Context, u *url.URL) (modelhost.Store, error) {
		cfg, err := FromURL(u)
		if err != nil {
			return nil, err
		}
		return Open(ctx, cfg)
	})
}
