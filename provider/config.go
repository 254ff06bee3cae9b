package provider

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// defaultMaxRetries is the SDK's own default (3 attempts = 2 retries) raised a
// little: EC2 throttles bursty Terraform applies more than most APIs.
const defaultMaxRetries = 5

// providerModel is the provider block.
type providerModel struct {
	Region                 types.String      `tfsdk:"region"`
	Profile                types.String      `tfsdk:"profile"`
	SharedConfigFiles      types.List        `tfsdk:"shared_config_files"`
	SharedCredentialsFiles types.List        `tfsdk:"shared_credentials_files"`
	AccessKey              types.String      `tfsdk:"access_key"`
	SecretKey              types.String      `tfsdk:"secret_key"`
	Token                  types.String      `tfsdk:"token"`
	AssumeRole             []assumeRoleModel `tfsdk:"assume_role"`
	Endpoints              []endpointsModel  `tfsdk:"endpoints"`
	DefaultTags            types.Map         `tfsdk:"default_tags"`
	MaxRetries             types.Int64       `tfsdk:"max_retries"`
}

type assumeRoleModel struct {
	RoleARN     types.String `tfsdk:"role_arn"`
	SessionName types.String `tfsdk:"session_name"`
	ExternalID  types.String `tfsdk:"external_id"`
}

type endpointsModel struct {
	EC2 types.String `tfsdk:"ec2"`
	STS types.String `tfsdk:"sts"`
}

func providerSchema() schema.Schema {
	return schema.Schema{
		Description: "Provisions wsdirect nodes on EC2 (or any EC2-compatible endpoint) and renders HAProxy and cloud-init configuration.",
		Attributes: map[string]schema.Attribute{
			"region": schema.StringAttribute{
				Optional:    true,
				Description: "AWS region. Falls back to AWS_REGION / AWS_DEFAULT_REGION and the shared config profile.",
			},
			"profile": schema.StringAttribute{
				Optional:    true,
				Description: "Shared config profile. Falls back to AWS_PROFILE.",
			},
			"shared_config_files": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Description: "Shared config files to read instead of ~/.aws/config.",
			},
			"shared_credentials_files": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Description: "Shared credentials files to read instead of ~/.aws/credentials.",
			},
			"access_key": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Static access key. Requires secret_key.",
				Validators: []validator.String{
					stringvalidator.AlsoRequires(path.MatchRoot("secret_key")),
				},
			},
			"secret_key": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Static secret key. Requires access_key.",
				Validators: []validator.String{
					stringvalidator.AlsoRequires(path.MatchRoot("access_key")),
				},
			},
			"token": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Session token for temporary static credentials.",
				Validators: []validator.String{
					stringvalidator.AlsoRequires(path.MatchRoot("access_key")),
				},
			},
			"default_tags": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Description: "Tags added to every taggable resource. A resource's own tags win on conflict.",
			},
			"max_retries": schema.Int64Attribute{
				Optional:    true,
				Description: fmt.Sprintf("How many times the SDK retries a failed or throttled API call. Default %d.", defaultMaxRetries),
				Validators:  []validator.Int64{int64validator.Between(0, 100)},
			},
		},
		Blocks: map[string]schema.Block{
			"assume_role": schema.ListNestedBlock{
				Description: "Assume this IAM role (through STS) with the base credentials.",
				Validators:  []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"role_arn":     schema.StringAttribute{Required: true, Description: "ARN of the role to assume."},
						"session_name": schema.StringAttribute{Optional: true, Description: "Session name recorded in CloudTrail."},
						"external_id":  schema.StringAttribute{Optional: true, Description: "External ID the role's trust policy requires."},
					},
				},
			},
			"endpoints": schema.ListNestedBlock{
				Description: "Custom service endpoints, for EC2-compatible clouds and emulators.",
				Validators:  []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"ec2": schema.StringAttribute{Optional: true, Description: "EC2 endpoint URL."},
						"sts": schema.StringAttribute{Optional: true, Description: "STS endpoint URL (used by assume_role)."},
					},
				},
			},
		},
	}
}

// ClientConfig is the resolved provider configuration handed to an
// EC2ClientFactory.
type ClientConfig struct {
	AWS         aws.Config // credentials, region and retryer resolved by LoadDefaultConfig
	EC2Endpoint string     // empty means the SDK's endpoint resolution
}

// EC2ClientFactory builds the EC2 client the resources use.
type EC2ClientFactory func(ctx context.Context, cfg ClientConfig) (EC2API, error)

// NewEC2Client is the default EC2ClientFactory: an aws-sdk-go-v2 EC2 client,
// with BaseEndpoint set when the provider's endpoints block names one.
func NewEC2Client(_ context.Context, cfg ClientConfig) (EC2API, error) {
	return ec2.NewFromConfig(cfg.AWS, func(o *ec2.Options) {
		if cfg.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.EC2Endpoint)
		}
	}), nil
}

// providerData is what resources and data sources receive from Configure.
type providerData struct {
	ec2         EC2API
	region      string
	defaultTags map[string]string
}

// configureClient resolves the provider block into providerData. It returns
// nil data (and no error) when the configuration is not yet known, which
// happens when it depends on other resources; resources then skip plan-time
// checks that need the API.
func configureClient(ctx context.Context, m providerModel, factory EC2ClientFactory) (*providerData, diag.Diagnostics) {
	var diags diag.Diagnostics
	if !providerConfigKnown(m) {
		return nil, diags
	}

	var opts []func(*awsconfig.LoadOptions) error
	if v := m.Region.ValueString(); v != "" {
		opts = append(opts, awsconfig.WithRegion(v))
	}
	if v := m.Profile.ValueString(); v != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(v))
	}
	if files := stringList(ctx, m.SharedConfigFiles, &diags); len(files) > 0 {
		opts = append(opts, awsconfig.WithSharedConfigFiles(files))
	}
	if files := stringList(ctx, m.SharedCredentialsFiles, &diags); len(files) > 0 {
		opts = append(opts, awsconfig.WithSharedCredentialsFiles(files))
	}
	if ak := m.AccessKey.ValueString(); ak != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(ak, m.SecretKey.ValueString(), m.Token.ValueString())))
	}
	maxRetries := defaultMaxRetries
	if !m.MaxRetries.IsNull() {
		maxRetries = int(m.MaxRetries.ValueInt64())
	}
	opts = append(opts, awsconfig.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxRetries + 1
			// The client-side retry quota would turn a long throttling
			// burst into hard failures; max_retries is the user's bound.
			o.RateLimiter = ratelimit.None
		})
	}))
	if diags.HasError() {
		return nil, diags
	}

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		diags.AddError("Unable to load AWS configuration", err.Error())
		return nil, diags
	}
	if awsCfg.Region == "" {
		diags.AddAttributeError(path.Root("region"), "Missing AWS region",
			"Set the provider's region argument, AWS_REGION, or a region in the shared config profile.")
		return nil, diags
	}

	var ep endpointsModel
	if len(m.Endpoints) > 0 {
		ep = m.Endpoints[0]
	}
	if len(m.AssumeRole) > 0 {
		ar := m.AssumeRole[0]
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if v := ep.STS.ValueString(); v != "" {
				o.BaseEndpoint = aws.String(v)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, ar.RoleARN.ValueString(),
			func(o *stscreds.AssumeRoleOptions) {
				if v := ar.SessionName.ValueString(); v != "" {
					o.RoleSessionName = v
				} else {
					o.RoleSessionName = "terraform-provider-wsdirect"
				}
				if v := ar.ExternalID.ValueString(); v != "" {
					o.ExternalID = aws.String(v)
				}
			}))
	}

	client, err := factory(ctx, ClientConfig{AWS: awsCfg, EC2Endpoint: ep.EC2.ValueString()})
	if err != nil {
		diags.AddError("Unable to create EC2 client", err.Error())
		return nil, diags
	}

	tags := map[string]string{}
	if !m.DefaultTags.IsNull() {
		diags.Append(m.DefaultTags.ElementsAs(ctx, &tags, false)...)
	}
	return &providerData{ec2: client, region: awsCfg.Region, defaultTags: tags}, diags
}

// providerConfigKnown reports whether every provider argument is known.
func providerConfigKnown(m providerModel) bool {
	for _, v := range []interface{ IsUnknown() bool }{
		m.Region, m.Profile, m.SharedConfigFiles, m.SharedCredentialsFiles,
		m.AccessKey, m.SecretKey, m.Token, m.DefaultTags, m.MaxRetries,
	} {
		if v.IsUnknown() {
			return false
		}
	}
	for _, ar := range m.AssumeRole {
		if ar.RoleARN.IsUnknown() || ar.SessionName.IsUnknown() || ar.ExternalID.IsUnknown() {
			return false
		}
	}
	for _, ep := range m.Endpoints {
		if ep.EC2.IsUnknown() || ep.STS.IsUnknown() {
			return false
		}
	}
	return true
}

func stringList(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(l.ElementsAs(ctx, &out, false)...)
	return out
}
