# The benchmark's compact policy (`cargo xtask bench`, gateward-compact.json): the same
# conditions as the RBAC rules in jwt-authn-rbac.yaml written out directly, without the policy
# library, and the same five headers as the library's GitHub example sets on an allow.
package gateward

import rego.v1

claims := input.token.claims

default decision := {"allow": false, "reason": "not an allowed deploy"}

decision := {"allow": true, "headers": {
	"x-gateward-route": "deploy",
	"x-ci-repository": claims.repository,
	"x-ci-repository-id": claims.repository_id,
	"x-ci-ref": claims.ref,
	"x-ci-sha": claims.sha,
}} if {
	input.request.method == "POST"
	deploy_path
	claims.repository_owner_id == "9919"
	claims.repository_id == "74839201"
	claims.ref_type == "branch"
	claims.ref == "refs/heads/main"
	claims.environment == "prod"
	claims.event_name == "push"
}

deploy_path if input.request.path == "/deploy"

deploy_path if startswith(input.request.path, "/deploy/")
