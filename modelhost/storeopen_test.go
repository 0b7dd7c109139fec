package modelhost_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/manta-ml/manta/modelhost"
)

// TestOpenStoreErrorsHideSecrets: OpenStore's errors name the store URL
// without its password or secret query parameters.
func TestOpenStoreErrorsHideSecrets(t *testing.T) {
	modelhost.RegisterStore("failing-redact", func(ctx context.Context, u *url.URL) (modelhost.Store, error) {
		return nil, context.Canceled
	})
	for _, spec := range []string{
		"failing-redact://ak:pw5ecret@h/b?secret_key=sk5ecret&token=t0k5ecret",
		"unknown-scheme://ak:pw5ecret@h/b?secret_key=sk5ecret",
		"s3://ak:pw5ecret@h:notaport/b?secret_key=sk5ecret%zz",
	} {
		_, err := modelhost.OpenStore(context.Background(), spec)
		if err == nil {
			t.Fatalf("%s: no error", spec)
		}
		if strings.Contains(err.Error(), "5ecret") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}
