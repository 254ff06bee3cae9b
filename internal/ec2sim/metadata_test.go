package ec2sim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestMetadataOptions(t *testing.T) {
	s, c := newTest(t, nil)
	ctx := context.Background()
	base := func() *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeT3Micro}
	}

	// Without options: EC2's defaults, IMDSv1 still allowed.
	plain := aws.ToString(run(t, c, base()).Instances[0].InstanceId)
	mo := describeOne(t, c, plain).MetadataOptions
	if mo == nil || mo.HttpTokens != types.HttpTokensStateOptional || aws.ToInt32(mo.HttpPutResponseHopLimit) != 1 ||
		mo.HttpEndpoint != types.InstanceMetadataEndpointStateEnabled || mo.State != types.InstanceMetadataOptionsStateApplied {
		t.Fatalf("default options = %+v", mo)
	}

	in := base()
	in.MetadataOptions = &types.InstanceMetadataOptionsRequest{
		HttpTokens: types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2), HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
	}
	out := run(t, c, in)
	if got := out.Instances[0].MetadataOptions; got == nil || got.HttpTokens != types.HttpTokensStateRequired {
		t.Errorf("RunInstances answer shows %+v", got)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	mo = describeOne(t, c, id).MetadataOptions
	if mo.HttpTokens != types.HttpTokensStateRequired || aws.ToInt32(mo.HttpPutResponseHopLimit) != 2 {
		t.Fatalf("launched with required/2, described %+v", mo)
	}
	if snap := s.Instances()[1].MetadataOptions; snap.HTTPTokens != "required" || snap.HTTPPutResponseHopLimit != 2 || snap.HTTPEndpoint != "enabled" {
		t.Errorf("snapshot %+v", snap)
	}

	// In place: only what is given changes.
	mod, err := c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpPutResponseHopLimit: aws.Int32(1), HttpEndpoint: types.InstanceMetadataEndpointStateDisabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(mod.InstanceId) != id || mod.InstanceMetadataOptions.State != types.InstanceMetadataOptionsStatePending {
		t.Errorf("modify answer %+v", mod.InstanceMetadataOptions)
	}
	mo = describeOne(t, c, id).MetadataOptions
	if mo.HttpTokens != types.HttpTokensStateRequired || aws.ToInt32(mo.HttpPutResponseHopLimit) != 1 ||
		mo.HttpEndpoint != types.InstanceMetadataEndpointStateDisabled || mo.State != types.InstanceMetadataOptionsStateApplied {
		t.Errorf("after modify: %+v", mo)
	}

	for name, tc := range map[string]struct {
		run  *types.InstanceMetadataOptionsRequest
		code string
	}{
		"hop limit 0":  {&types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(0)}, codeInvalidParameterValue},
		"hop limit 65": {&types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(65)}, codeInvalidParameterValue},
		"bad tokens":   {&types.InstanceMetadataOptionsRequest{HttpTokens: "sometimes"}, codeInvalidParameterValue},
	} {
		in := base()
		in.MetadataOptions, in.MinCount, in.MaxCount = tc.run, aws.Int32(1), aws.Int32(1)
		_, err := c.RunInstances(ctx, in)
		if errCode(t, err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	_, err = c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id)})
	wantCode(t, err, codeInvalidParameterCombination)
	_, err = c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String("i-0000000000000000f"), HttpTokens: types.HttpTokensStateRequired})
	wantCode(t, err, codeInstanceNotFound)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: types.HttpTokensStateOptional})
	wantCode(t, err, codeIncorrectInstanceState)
}
