package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/wsdirect/terraform-provider-wsdirect/internal/ec2sim"
)

// readyServer answers /readyz?ip=<address> with 503 for the first
// notReadyFor checks of each address, then 200 while the address is not
// marked broken. It records every address it saw.
type readyServer struct {
	*httptest.Server
	notReadyFor int
	mu          sync.Mutex
	checks      map[string]int
	broken      map[string]bool
	total       atomic.Int64
}

func newReadyServer(t *testing.T, notReadyFor int) *readyServer {
	rs := &readyServer{notReadyFor: notReadyFor, checks: map[string]int{}, broken: map[string]bool{}}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.total.Add(1)
		ip := r.URL.Query().Get("ip")
		rs.mu.Lock()
		rs.checks[ip]++
		n, broken := rs.checks[ip], rs.broken[ip]
		rs.mu.Unlock()
		if r.URL.Path != "/readyz" || ip == "" || broken || n <= rs.notReadyFor {
			http.Error(w, "not ready: certificate pending", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	}))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *readyServer) checksOf(ip string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.checks[ip]
}

// TestAccNode_waitForReady: create returns only once the URL answers 200
// for the new instance's address; changing the block changes nothing; an
// instance that never gets ready fails the create with its ID and what the
// check saw, and is left tainted.
func TestAccNode_waitForReady(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	rs := newReadyServer(t, 2)
	var id, privateIP string
	block := func(timeout string) string {
		return fmt.Sprintf(`
  wait_for_ready {
    url     = "%s/readyz?ip={private_ip}"
    timeout = %q
  }`, rs.URL, timeout)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           env.nodeConfig("t3.small", block("1m")),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("wait_for_ready").AtMapKey("timeout"), knownvalue.StringExact("1m")),
					statecheck.ExpectKnownValue(testNode, at("state"), knownvalue.StringExact("running")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "private_ip", &privateIP),
					func(*terraform.State) error {
						// Two 503s, then the 200 create waited for.
						if n := rs.checksOf(privateIP); n != 3 {
							return fmt.Errorf("readiness checks of %s: %d, want 3", privateIP, n)
						}
						return nil
					},
				),
			},
			{
				// Only the wait changes: an in-place update that checks nothing.
				Config:           env.nodeConfig("t3.small", block("2m")),
				ConfigPlanChecks: expectAction(plancheck.ResourceActionUpdate),
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, true),
					func(*terraform.State) error {
						if n := rs.checksOf(privateIP); n != 3 {
							return fmt.Errorf("readiness checks of %s after an update: %d, want still 3", privateIP, n)
						}
						return nil
					},
				),
			},
			{
				// A replacement that never gets ready: the address it gets
				// is marked broken before the create polls it.
				PreConfig: func() {
					rs.mu.Lock()
					rs.notReadyFor = 1 << 30
					rs.mu.Unlock()
				},
				Config:      env.nodeConfig("t3.micro", block("3s")),
				ExpectError: regexp.MustCompile(`(?s)instance i-[0-9a-f]+: not ready within 3s: GET\s+http://127\.0\.0\.1:\d+/readyz\?ip=[0-9.]+:\s+503 Service\s+Unavailable not\s+ready: certificate\s+pending`),
			},
			{
				// The failed instance was saved tainted: the next apply
				// replaces it, and this one gets ready.
				PreConfig: func() {
					rs.mu.Lock()
					rs.notReadyFor = 0
					rs.mu.Unlock()
				},
				Config: env.nodeConfig("t3.micro", block("1m")),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testNode, plancheck.ResourceActionDestroyBeforeCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("instance_type"), knownvalue.StringExact("t3.micro")),
				},
			},
		},
	})
}

// TestAccNode_waitForReadyValidation: the block's values are checked at
// plan time.
func TestAccNode_waitForReadyValidation(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.nodeConfig("t3.small", `wait_for_ready { url = "ftp://{public_ip}/readyz" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`must be an http:// or https:// URL`),
			},
			{
				Config: env.nodeConfig("t3.small", `
  wait_for_ready {
    url     = "http://{private_ip}/readyz"
    timeout = "soon"
  }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`"soon" is not a positive duration`),
			},
			{
				Config:      env.nodeConfig("t3.small", `wait_for_ready { timeout = "1m" }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`wait_for_ready\.url is\s+required`),
			},
			{
				Config:      env.nodeConfig("t3.small", `elastic_ip_key = "auth-0"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`elastic_ip_key requires public_ip = "elastic"`),
			},
		},
	})
}

// TestAccNode_elasticIPKey: with create_before_destroy, a replacement takes
// over the keyed Elastic IP (same address, same allocation) and the old
// instance's destroy leaves it; the last destroy releases it.
func TestAccNode_elasticIPKey(t *testing.T) {
	env := newTestAccEnvSim(t, ec2sim.DefaultConfig())
	var id, addr string
	cfg := func(instanceType string) string {
		return env.nodeConfig(instanceType, `
  public_ip      = "elastic"
  elastic_ip_key = "demo-auth-0"
  lifecycle {
    create_before_destroy = true
  }`)
	}
	keyed := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			out, err := env.EC2().DescribeAddresses(context.Background(), &ec2.DescribeAddressesInput{
				Filters: []ec2types.Filter{{Name: aws.String("tag:" + tagEIPKey), Values: []string{"demo-auth-0"}}},
			})
			if err != nil {
				return err
			}
			if len(out.Addresses) != 1 {
				return fmt.Errorf("%d Elastic IPs keyed demo-auth-0, want 1", len(out.Addresses))
			}
			a := out.Addresses[0]
			if got := aws.ToString(a.PublicIp); got != want {
				return fmt.Errorf("keyed Elastic IP is %s, want %s", got, want)
			}
			if owner, inst := tagValue(a.Tags, tagEIPOwner), aws.ToString(a.InstanceId); owner != id || inst != id {
				return fmt.Errorf("keyed Elastic IP owned by %q, on %q; want both %s", owner, inst, id)
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProtoV6ProviderFactories,
		CheckDestroy:             env.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:           cfg("t3.small"),
				ConfigPlanChecks: emptyPlanAfterApply(),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_key"), knownvalue.StringExact("demo-auth-0")),
					statecheck.ExpectKnownValue(testNode, at("elastic_ip_allocation_ids"), knownvalue.MapSizeExact(1)),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					captureAttr(testNode, "id", &id),
					captureAttr(testNode, "public_ip_address", &addr),
					func(s *terraform.State) error { return keyed(addr)(s) },
				),
			},
			{
				Config: cfg("t3.medium"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testNode, plancheck.ResourceActionCreateBeforeDestroy)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					checkAttrEquals(testNode, "id", &id, false),
					checkAttrEquals(testNode, "public_ip_address", &addr, true),
					captureAttr(testNode, "id", &id),
					func(s *terraform.State) error { return keyed(addr)(s) },
				),
			},
		},
	})
}
