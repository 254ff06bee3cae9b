package provider

import (
	"fmt"

	"context"
	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// Option customises a provider instance; tests use it to inject clients.
type Option func(*wsdirectProvider)

// WithEC2ClientFactory replaces the function that turns the provider
// configuration into an EC2API client. The default builds an aws-sdk-go-v2
// client with LoadDefaultConfig (see NewEC2Client). Tests inject a factory to
// wrap or count calls, the way terraform-provider-time injects its clock.
func WithEC2ClientFactory(f EC2ClientFactory) Option {
	return func(p *wsdirectProvider) { p.newEC2 = f }
}

// New returns a constructor for the provider, as providerserver.Serve wants.
func New(version string, opts ...Option) func() provider.Provider {
	return func() provider.Provider {
		p := &wsdirectProvider{version: version, newEC2: NewEC2Client}
		for _, o := range opts {
			o(p)
		}
		return p
	}
}

type wsdirectProvider struct {
	version string
	newEC2  EC2ClientFactory
}

var (
	_ provider.Provider              = (*wsdirectProvider)(nil)
	_ provider.ProviderWithFunctions = (*wsdirectProvider)(nil)
)

func (p *wsdirectProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "wsdirect"
	resp.Version = p.version
}

func (p *wsdirectProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = providerSchema()
}

func (p *wsdirectProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	data, diags := configureClient(ctx, cfg, p.newEC2)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() || data == nil {
		return
	}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *wsdirectProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewNodeResource,
		NewPrivateIPsResource,
	}
}

func (p *wsdirectProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewNodesDataSource,
		NewHAProxyConfigDataSource, NewCloudInitDataSource,
	}
}

func (p *wsdirectProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{NewHAProxyConfigFunction, NewCloudInitFunction}
}

// providerDataFrom extracts the configured client from ProviderData. It
// returns nil, without error, before the provider is configured (Terraform
// calls Configure on resources early, with nil data).
func providerDataFrom(v any, diags *diag.Diagnostics) *providerData {
	if v == nil {
		return nil
	}
	d, ok := v.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T", v))
		return nil
	}
	return d
}
