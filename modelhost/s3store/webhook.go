package s3store

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/manta-ml/manta/modelhost"
)

// maxEventBytes bounds a webhook request body (outside input).
const maxEventBytes = 1 << 20

// WebhookOption configures WebhookHandler.
type WebhookOption func(*webhook)

// WebhookToken makes the handler require "Authorization: Bearer <token>",
// as MinIO sends it when MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_<ID>=<token>.
func WebhookToken(token string) WebhookOption {
	return func(w *webhook) { w.token = token }
}

// WebhookHandler returns the HTTP handler for MinIO's webhook notification
// target (MINIO_NOTIFY_WEBHOOK_ENDPOINT_<ID> pointing at the member, and the
// bucket subscribed with SubscribeWebhook). For every event on this store's
// bucket and prefix that creates or removes a manifest.json or a LATEST,
// onChange is called with the model id (once per id per request, on the
// request's goroutine: it must not block). Other events are acknowledged
// and ignored. Answers: 200 (also for HEAD/GET probes), 400 for a body
// that is not a MinIO event, 401 for a wrong token, 405 for other methods.
func (s *Store) WebhookHandler(onChange func(modelID string), opts ...WebhookOption) http.Handler {
	w := &webhook{bucket: s.cfg.Bucket, keys: s.keys, onChange: onChange}
	for _, o := range opts {
		o(w)
	}
	return w
}

type webhook struct {
	bucket   string
	keys     keys
	token    string
	onChange func(string)
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodHead, http.MethodGet:
		w.WriteHeader(http.StatusOK)
		return
	default:
		w.Header().Set("Allow", "POST, HEAD, GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.token != "" {
		got := r.Header.Get("Authorization")
		if subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+h.token)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventBytes+1))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if len(body) > maxEventBytes {
		http.Error(w, "event too large", http.StatusRequestEntityTooLarge)
		return
	}
	ids, err := parseEvent(body, h.bucket, h.keys)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, id := range ids {
		h.onChange(id)
	}
	w.WriteHeader(http.StatusOK)
}

// eventLog is the body MinIO's webhook target posts (event.Log): the event
// name, "bucket/key" (unescaped), and the S3-style records (key escaped).
type eventLog struct {
	EventName string        `json:"EventName"`
	Key       string        `json:"Key"`
	Records   []eventRecord `json:"Records"`
}

type eventRecord struct {
	EventName string `json:"eventName"`
	S3        struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key string `json:"key"`
		} `json:"object"`
	} `json:"s3"`
}

// parseEvent returns the sorted, distinct ids of models whose manifest or
// LATEST an event body created or removed in bucket under k's root.
func parseEvent(body []byte, bucket string, k keys) ([]string, error) {
	var ev eventLog
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, errors.New("s3store: webhook: body is not a MinIO event")
	}
	type change struct{ name, bucket, key string }
	var changes []change
	for _, r := range ev.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("s3store: webhook: bad object key escape")
		}
		changes = append(changes, change{r.EventName, r.S3.Bucket.Name, key})
	}
	if len(ev.Records) == 0 && ev.Key != "" {
		b, key, _ := strings.Cut(ev.Key, "/")
		changes = append(changes, change{ev.EventName, b, key})
	}
	var ids []string
	for _, c := range changes {
		if c.bucket != bucket {
			continue
		}
		if !strings.HasPrefix(c.name, "s3:ObjectCreated:") && !strings.HasPrefix(c.name, "s3:ObjectRemoved:") {
			continue
		}
		p, ok := k.parse(c.key)
		if !ok || !(p.Latest || p.Path == manifestName) {
			continue
		}
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// SubscribeWebhook subscribes the bucket's object created/removed events
// under the store's prefix to the notification target arn (for MinIO's
// webhook target <ID>: "arn:minio:sqs::<ID>:webhook", configured on the
// server with MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>=on and
// MINIO_NOTIFY_WEBHOOK_ENDPOINT_<ID>=http://member:port/path). Existing
// subscriptions of the bucket are kept; subscribing twice is a no-op.
func (s *Store) SubscribeWebhook(ctx context.Context, arn string) error {
	a, err := notification.NewArnFromString(arn)
	if err != nil {
		return fmt.Errorf("s3store: webhook ARN %q: %v", arn, err)
	}
	cfg, err := s.client.GetBucketNotification(ctx, s.cfg.Bucket)
	if err != nil {
		return s.wrap(err, "get notification config of %s", s.cfg.Bucket)
	}
	q := notification.NewConfig(a)
	q.AddEvents(notification.ObjectCreatedAll, notification.ObjectRemovedAll)
	if s.keys.root != "" {
		q.AddFilterPrefix(s.keys.root)
	}
	for _, have := range cfg.QueueConfigs {
		if have.Queue == arn && have.Equal(q.Events, s.keys.root, "") {
			return nil // already subscribed
		}
	}
	if !cfg.AddQueue(q) {
		return nil // already subscribed
	}
	if err := s.client.SetBucketNotification(ctx, s.cfg.Bucket, cfg); err != nil {
		return s.wrap(err, "subscribe %s to %s", s.cfg.Bucket, arn)
	}
	return nil
}

// ChangeHandler is WebhookHandler as modelhost.ChangeNotifier, which the
// SDK's member serves at POST /v1/hooks/minio (token: WebhookToken, when
// not empty).
func (s *Store) ChangeHandler(onChange func(modelID string), token string) http.Handler {
	var opts []WebhookOption
	if token != "" {
		opts = append(opts, WebhookToken(token))
	}
	return s.WebhookHandler(onChange, opts...)
}

var _ modelhost.ChangeNotifier = (*Store)(nil)
