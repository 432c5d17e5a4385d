# Quick-start policy: only octo-org/deploy, from main, in environment prod, may POST /deploy.
package gateward

import rego.v1

claims := input.token.claims

default decision := {"allow": false, "reason": "not an allowed deploy"}

decision := {"allow": true, "headers": {"x-ci-environment": claims.environment}} if {
	# Pin the immutable owner id, not only the name: names are recycled.
	claims.repository_owner_id == "9919"
	claims.repository == "octo-org/deploy"
	claims.ref == "refs/heads/main"
	claims.environment == "prod"
	input.request.method == "POST"
	input.request.path == "/deploy"
}

decision := {"allow": false, "reason": sprintf("deploys must come from refs/heads/main, not %s", [claims.ref])} if {
	claims.ref != "refs/heads/main"
}
