# Walkthrough step 1 (docs/policies.md): deploys of one repository from its main branch,
# written against the raw claims.
package walkthrough.step1

import rego.v1

claims := input.token.claims

default decision := {"allow": false, "reason": "only octo-org/deploy's main branch may deploy to prod"}

decision := {"allow": true} if {
	input.request.method == "POST"
	input.request.path == "/deploy"

	# Ids, not names: a deleted or renamed org's name can be registered by anyone, the
	# numeric ids never come back.
	claims.repository_owner_id == "9919"
	claims.repository_id == "74839201"

	# A tag may be called `main` too: check the kind of ref and its full name.
	claims.ref_type == "branch"
	claims.ref == "refs/heads/main"

	# pull_request_target runs with the base branch's ref (refs/heads/main) on behalf of a
	# fork: allow-list the events instead of trusting the ref.
	claims.event_name in {"push", "workflow_dispatch"}

	# A protected environment (required reviewers) is what makes `prod` mean something.
	claims.environment == "prod"
}
