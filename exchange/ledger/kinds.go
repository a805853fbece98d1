package ledger

// The kinds of entry, named beside the entry format so that every reader
// (the node's apply, the SDK's summaries, the console, the CLI, a
// department's own verifier) uses one spelling. The subject that owns a
// kind (its body, the check of its command and its apply) is named beside
// it; a kind not applied by any subject is refused at apply.
const (
	// identity (exchange/identity): the hub and its credentials.
	KindHubInit     = "hub.init"
	KindCredIssued  = "cred.issued"
	KindCredRevoked = "cred.revoked"

	// catalog: departments and datasets.
	KindDeptAdded        = "dept.added"
	KindDeptWebhook      = "dept.webhook"
	KindDatasetPublished = "dataset.published"
	KindDatasetRetired   = "dataset.retired"
	KindDatasetUpdated   = "dataset.updated"

	// schemas: subjects and versions.
	KindSchemaRegistered = "schema.registered"
	KindSchemaCompat     = "schema.compat"

	// exchange/shares: the share workflow and disputes.
	KindShareRequested  = "share.requested"
	KindShareApproved   = "share.approved" // creates a grant
	KindShareRejected   = "share.rejected"
	KindShareWithdrawn  = "share.withdrawn"
	KindGrantCreated    = "grant.created" // by the open-sharing policy
	KindGrantRevoked    = "grant.revoked"
	KindGrantExpired    = "grant.expired"
	KindDisputeOpened   = "dispute.opened"
	KindDisputeResolved = "dispute.resolved"

	// exchange/nodes: join tokens and the nodes that used them.
	KindNodeToken  = "node.token"
	KindNodeJoined = "node.joined"
)
