package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
)

// The readiness wait after create (wait_for_ready): an instance that is
// "running" has not yet booted, installed its release or obtained its
// certificate. With create_before_destroy, Terraform destroys the old
// instance as soon as the new one's create returns, so the create must not
// return before the new one serves.
const (
	// readyPollInterval is the pause between readiness checks: short
	// against a boot of tens of seconds, long enough to stay out of the
	// instance's way.
	readyPollInterval = 2 * time.Second
	// readyRequestTimeout bounds one check: /readyz answers at once or not
	// at all.
	readyRequestTimeout = 5 * time.Second
	// defaultReadyTimeout bounds the whole wait when wait_for_ready names
	// no timeout: a boot, a release download and an ACME order take a few
	// minutes at worst; the create timeout (10 minutes) bounds it too.
	defaultReadyTimeout = 5 * time.Minute
)

var waitForReadyAttrTypes = map[string]attr.Type{
	"url":     types.StringType,
	"timeout": types.StringType,
}

type waitForReadyModel struct {
	URL     types.String `tfsdk:"url"`
	Timeout types.String `tfsdk:"timeout"`
}

func waitForReadySchema() schema.SingleNestedBlock {
	return schema.SingleNestedBlock{
		Description: "Make create wait until the instance answers an HTTP GET with 200, e.g. a wsdirect node or auth host's " +
			"/readyz on port 80 (plain HTTP next to the ACME http-01 challenges), which turns 200 only once the service holds " +
			"its certificate and accepts tokens. With lifecycle { create_before_destroy = true } Terraform destroys an old " +
			"instance as soon as its replacement's create returns; this makes that moment \"the replacement serves\" instead " +
			"of \"the replacement is running\". A wait that times out fails the create with an error naming the instance, " +
			"which is then saved tainted (the next apply replaces it) while the old instance stays. Changing the block changes " +
			"nothing on an existing instance.",
		Attributes: map[string]schema.Attribute{
			"url": schema.StringAttribute{
				Optional: true,
				Description: "Required in the block: http:// or https:// URL to poll every 2 seconds; {public_ip} and {private_ip} are replaced by the " +
					"instance's addresses (e.g. \"http://{public_ip}/readyz\").",
				Validators: []validator.String{
					stringvalidator.RegexMatches(readyURLRe, "must be an http:// or https:// URL"),
				},
			},
			"timeout": schema.StringAttribute{
				Optional:    true,
				Description: "How long to wait, a Go duration such as \"5m\" (default). The create timeout bounds it too.",
				Validators:  []validator.String{durationValidator{}},
			},
		},
	}
}

// readyURLRe accepts a URL with a host part, which may be a placeholder.
var readyURLRe = regexp.MustCompile(`^https?://[^/\s]+(/\S*)?$`)

// waitForReady reads the block (nil when absent or without a URL).
func (m *nodeModel) waitForReady(ctx context.Context, diags *diag.Diagnostics) *waitForReadyModel {
	if m.WaitForReady.IsNull() || m.WaitForReady.IsUnknown() {
		return nil
	}
	var w waitForReadyModel
	diags.Append(m.WaitForReady.As(ctx, &w, basetypes.ObjectAsOptions{})...)
	if w.URL.IsNull() || w.URL.IsUnknown() {
		return nil
	}
	return &w
}

// readyURL fills in the instance's addresses; a placeholder for an address
// the instance does not have is an error.
func readyURL(template, publicIP, privateIP string) (string, error) {
	u := template
	for _, p := range [][2]string{{"{public_ip}", publicIP}, {"{private_ip}", privateIP}} {
		if !strings.Contains(u, p[0]) {
			continue
		}
		if p[1] == "" {
			return "", fmt.Errorf("wait_for_ready.url %q names %s, but the instance has no such address", template, p[0])
		}
		u = strings.ReplaceAll(u, p[0], p[1])
	}
	return u, nil
}

// pollReady GETs url until it answers 200, the timeout passes or ctx ends.
// The error names the instance and what the last check saw.
func pollReady(ctx context.Context, id, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: readyRequestTimeout}
	defer hc.CloseIdleConnections()
	start := time.Now()
	var last string
	for {
		last = checkReady(ctx, hc, url)
		if last == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			cause := "the create timeout ended"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && time.Since(start) >= timeout-time.Second {
				cause = fmt.Sprintf("not ready within %s", timeout)
			}
			return fmt.Errorf("instance %s: %s: GET %s: %s", id, cause, url, last)
		case <-time.After(readyPollInterval):
		}
	}
}

// checkReady returns "" when url answers 200, else what it answered.
func checkReady(ctx context.Context, hc *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusOK {
		return ""
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s", resp.Status, body))
}

// readyTimeout is the block's timeout, or the default.
func (w *waitForReadyModel) readyTimeout() time.Duration {
	if w.Timeout.IsNull() || w.Timeout.IsUnknown() {
		return defaultReadyTimeout
	}
	d, err := time.ParseDuration(w.Timeout.ValueString())
	if err != nil {
		return defaultReadyTimeout // the validator already refused it
	}
	return d
}

// durationValidator checks a positive Go duration string.
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return `value must be a positive duration such as "90s" or "5m"`
}
func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }
func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d <= 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%q is not a positive duration such as \"90s\" or \"5m\"", req.ConfigValue.ValueString()))
	}
}
