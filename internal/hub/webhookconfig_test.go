package hub_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/internal/hub"
)

// TestReviewNegativeWebhookFlagNamedAlone: a negative value for one
// webhook flag was refused with an error naming all nine, leaving the
// operator to find which. Found by the second outside review. The error
// names the flag that was wrong and its value, and no other webhook
// flag; nothing starts.
func TestReviewNegativeWebhookFlagNamedAlone(t *testing.T) {
	flags := []string{"--webhook-queue-per-source", "--webhook-queue-max-bytes", "--webhook-queue-max-age", "--webhook-timeout",
		"--webhook-connect-timeout", "--webhook-workers", "--webhook-per-dept", "--webhook-redeliver-max", "--webhook-redeliver-window"}
	tests := []struct {
		flag, value string
		set         func(*hub.Config)
	}{
		{"--webhook-queue-per-source", "-1", func(c *hub.Config) { c.WebhookQueue.PerSource = -1 }},
		{"--webhook-queue-max-bytes", "-1", func(c *hub.Config) { c.WebhookQueue.MaxBytes = -1 }},
		{"--webhook-queue-max-age", "-1s", func(c *hub.Config) { c.WebhookQueue.MaxAge = -time.Second }},
		{"--webhook-timeout", "-1s", func(c *hub.Config) { c.WebhookTimeout = -time.Second }},
		{"--webhook-connect-timeout", "-1s", func(c *hub.Config) { c.WebhookConnectTimeout = -time.Second }},
		{"--webhook-workers", "-1", func(c *hub.Config) { c.WebhookWorkers = -1 }},
		{"--webhook-per-dept", "-1", func(c *hub.Config) { c.WebhookPerDept = -1 }},
		{"--webhook-redeliver-max", "-1", func(c *hub.Config) { c.WebhookRedeliverMax = -1 }},
		{"--webhook-redeliver-window", "-1s", func(c *hub.Config) { c.WebhookRedeliverWindow = -time.Second }},
	}
	for _, tc := range tests {
		t.Run(tc.flag, func(t *testing.T) {
			cfg := hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}
			tc.set(&cfg)
			n, err := hub.Start(context.Background(), cfg)
			if err == nil {
				n.Close()
				t.Fatalf("%s %s: started", tc.flag, tc.value)
			}
			if want := tc.flag + " " + tc.value; !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not name %q", err, want)
			}
			for _, other := range flags { // none is the start of another
				if other != tc.flag && strings.Contains(err.Error(), other) {
					t.Errorf("%q names %s too", err, other)
				}
			}
		})
	}
}
