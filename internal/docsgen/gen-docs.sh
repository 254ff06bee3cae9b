#!/usr/bin/env bash
# Regenerates docs/ with tfplugindocs, offline.
#
# tfplugindocs normally builds the provider and downloads terraform to ask
# it for the schema. Instead we build the provider ourselves, point the
# repository's terraform (bin/terraform, or $TERRAFORM) at it through a
# dev_overrides CLI config, dump the schema with
# `terraform providers schema -json`, and hand that file to tfplugindocs.
# Output depends only on the sources, so CI can `git diff --exit-code docs/`.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

TFPLUGINDOCS_VERSION=${TFPLUGINDOCS_VERSION:-v0.25.0}
TERRAFORM=${TERRAFORM:-$root/bin/terraform}
TFPLUGINDOCS=${TFPLUGINDOCS:-$root/bin/tfplugindocs}
GO=${GO:-go}

if [ ! -x "$TERRAFORM" ]; then
  echo "gen-docs: no terraform at $TERRAFORM (run make bin/terraform or set TERRAFORM)" >&2
  exit 1
fi
if [ ! -x "$TFPLUGINDOCS" ]; then
  echo "gen-docs: installing tfplugindocs $TFPLUGINDOCS_VERSION into $(dirname "$TFPLUGINDOCS")" >&2
  GOBIN=$(dirname "$TFPLUGINDOCS") "$GO" install "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs@$TFPLUGINDOCS_VERSION"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/plugins" "$work/config"

"$GO" build -o "$work/plugins/terraform-provider-wsdirect" .

cat > "$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "registry.terraform.io/wsdirect/wsdirect" = "$work/plugins"
  }
  direct {}
}
RC
cat > "$work/config/main.tf" <<'TF'
terraform {
  required_providers {
    wsdirect = {
      source = "wsdirect/wsdirect"
    }
  }
}
TF

(
  cd "$work/config"
  TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 \
    "$TERRAFORM" providers schema -json > "$work/schema.raw.json"
)
# tfplugindocs looks the schema up by short name (or under the hashicorp
# namespace), not by our registry address.
sed 's|"provider_schemas":{"registry.terraform.io/wsdirect/wsdirect":|"provider_schemas":{"wsdirect":|' \
  "$work/schema.raw.json" > "$work/schema.json"
if ! grep -q '"provider_schemas":{"wsdirect":' "$work/schema.json"; then
  echo "gen-docs: unexpected schema JSON from terraform" >&2
  exit 1
fi

"$TFPLUGINDOCS" generate \
  --provider-dir "$root" \
  --provider-name wsdirect \
  --rendered-provider-name wsdirect \
  --providers-schema "$work/schema.json" \
  --examples-dir examples \
  --website-source-dir internal/docsgen/templates \
  --rendered-website-dir docs

echo "gen-docs: docs/ regenerated"
