package console

// The message catalogs: every text a page shows, by key, in English and
// simplified Chinese. Templates use {{t .Lang "key"}}; a key missing in a
// language falls back to English, and a missing key shows as itself (the
// test TestCatalogsComplete keeps both catalogs whole).

var messages = map[string]map[string]string{
	"en": {
		"nav.catalog": "Catalog", "nav.inbox": "Inbox", "nav.grants": "Grants", "nav.ledger": "Ledger",
		"lang.switch": "中文", "lang.other": "zh",
		"title":          "xhub console",
		"login.refused":  "This link was used already or is not this console's. Run xhub console again for a new one.",
		"login.needed":   "Open the address xhub console printed: it signs you in once.",
		"csrf.refused":   "This form did not come from this console's page: refused.",
		"catalog.search": "Search", "catalog.dept": "Department", "catalog.share": "Share type", "catalog.any": "any",
		"catalog.none": "No dataset matches.",
		"col.id":       "Dataset", "col.title": "Title", "col.owner": "Owner", "col.share": "Share", "col.frequency": "Update frequency",
		"col.fields": "Fields", "col.schema": "Schema", "col.request": "Request", "col.requester": "Requester", "col.purpose": "Purpose",
		"col.days": "Days", "col.due": "Due", "col.grant": "Grant", "col.grantee": "Grantee", "col.expires": "Expires",
		"col.status": "Status", "col.seq": "#", "col.time": "Time", "col.actor": "By", "col.kind": "Kind", "col.what": "What it decided",
		"share.open": "open", "share.conditional": "conditional", "share.none": "not shared",
		"dataset.fields": "Fields", "dataset.type": "Type", "dataset.required": "required", "dataset.holders": "Departments holding active grants",
		"dataset.apply": "Apply for this data", "dataset.purpose": "Purpose", "dataset.days": "Days", "dataset.submit": "Apply",
		"dataset.description": "Description", "dataset.keywords": "Keywords", "dataset.versions": "Schema versions", "dataset.compat": "Compatibility mode",
		"apply.pending": "Request %s sent: the owner's officers will decide.", "apply.granted": "Granted at once: grant %s.",
		"inbox.empty": "No request waits for you.", "inbox.overdue": "OVERDUE", "inbox.approve": "Approve", "inbox.reject": "Reject",
		"inbox.reason": "Reason", "inbox.live": "New requests appear here as they arrive.", "inbox.new": "New:",
		"approve.done": "Request %s approved: grant %s (%s).", "reject.done": "Request %s rejected.",
		"grants.given": "Granted on my datasets", "grants.received": "Received by my department", "grants.revoke": "Revoke",
		"grants.none": "None.", "revoke.done": "Grant %s revoked.",
		"ledger.head": "Signed head", "ledger.verified": "verified against the pinned ledger key", "ledger.unverified": "NOT verified",
		"ledger.entries":    "entries",
		"ledger.consistent": "and it extends the head this console saw last, of", "ledger.inconsistent": "DOES NOT extend the head this console saw last",
		"entry.proved": "Inclusion proof verified against the signed head of",
		"nav.activity": "Activity", "activity.window": "The last 30 days of accesses; requests since the start.",
		"activity.perday": "Accesses to my datasets per day (by department)", "activity.records": "Records delivered per dataset",
		"activity.outcomes": "Requests for my datasets by outcome", "activity.median": "Median time to a decision, per month",
		"activity.overdue": "Requests answered late or still overdue, per month",
		"status.pending":   "pending", "status.approved": "approved", "status.rejected": "rejected", "status.withdrawn": "withdrawn",
		"status.active": "active", "status.revoked": "revoked", "status.expired": "expired", "status.ended": "ended",
		"nav.disputes": "Disputes", "dispute.open": "Dispute data received under a grant", "dispute.record": "Record key",
		"dispute.field": "Field (of your grant)", "dispute.submit": "Open the dispute", "dispute.resolve": "Answer",
		"dispute.none": "No disputes.", "dispute.opened": "Dispute %s opened; the owner must answer by %s.", "dispute.resolved": "Dispute %s answered: %s.",
		"outcome.corrected": "corrected", "outcome.rejected": "data confirmed (rejected)", "outcome.open": "open",
		"col.dispute": "Dispute", "col.opener": "Opened by", "col.answer": "Answer", "dispute.nogrant": "Your department holds no grant to dispute.", "entry.unproved": "Inclusion proof NOT verified",
	},
	"zh": {
		"nav.catalog": "资源目录", "nav.inbox": "待办", "nav.grants": "授权", "nav.ledger": "账本",
		"lang.switch": "English", "lang.other": "en",
		"title":          "xhub 控制台",
		"login.refused":  "此链接已使用或不属于本控制台。请重新运行 xhub console 获取新链接。",
		"login.needed":   "请打开 xhub console 打印的地址：它只能登录一次。",
		"csrf.refused":   "此表单不是来自本控制台的页面：已拒绝。",
		"catalog.search": "搜索", "catalog.dept": "部门", "catalog.share": "共享类型", "catalog.any": "全部",
		"catalog.none": "没有匹配的资源。",
		"col.id":       "资源代码", "col.title": "资源名称", "col.owner": "提供方", "col.share": "共享类型", "col.frequency": "更新周期",
		"col.fields": "信息项", "col.schema": "模式", "col.request": "申请", "col.requester": "申请方", "col.purpose": "用途",
		"col.days": "天数", "col.due": "答复期限", "col.grant": "授权", "col.grantee": "被授权方", "col.expires": "到期",
		"col.status": "状态", "col.seq": "序号", "col.time": "时间", "col.actor": "操作者", "col.kind": "类型", "col.what": "内容",
		"share.open": "无条件共享", "share.conditional": "有条件共享", "share.none": "不予共享",
		"dataset.fields": "信息项", "dataset.type": "类型", "dataset.required": "必填", "dataset.holders": "持有有效授权的部门",
		"dataset.apply": "申请使用此资源", "dataset.purpose": "用途", "dataset.days": "天数", "dataset.submit": "提交申请",
		"dataset.description": "描述", "dataset.keywords": "关键词", "dataset.versions": "模式版本", "dataset.compat": "兼容模式",
		"apply.pending": "申请 %s 已提交，等待提供方审核。", "apply.granted": "已自动授权：%s。",
		"inbox.empty": "没有待处理的申请。", "inbox.overdue": "已逾期", "inbox.approve": "同意", "inbox.reject": "驳回",
		"inbox.reason": "理由", "inbox.live": "新的申请会自动出现在这里。", "inbox.new": "新事项：",
		"approve.done": "申请 %s 已同意：授权 %s（%s）。", "reject.done": "申请 %s 已驳回。",
		"grants.given": "我方资源的授权", "grants.received": "我方获得的授权", "grants.revoke": "撤销",
		"grants.none": "无。", "revoke.done": "授权 %s 已撤销。",
		"ledger.head": "签名树根", "ledger.verified": "已用固定的账本公钥验证", "ledger.unverified": "未通过验证",
		"ledger.entries":    "条记录",
		"ledger.consistent": "且延续本控制台上次看到的树根，其记录数为", "ledger.inconsistent": "未能延续本控制台上次看到的树根",
		"entry.proved": "包含证明已通过验证，签名树根记录数",
		"nav.activity": "统计", "activity.window": "访问统计为最近30天；申请统计为全部。",
		"activity.perday": "我方资源每日被访问次数（按部门）", "activity.records": "各资源交付记录数",
		"activity.outcomes": "我方资源的申请结果", "activity.median": "每月审核用时中位数",
		"activity.overdue": "每月逾期答复或仍逾期的申请数",
		"status.pending":   "待审核", "status.approved": "已同意", "status.rejected": "已驳回", "status.withdrawn": "已撤回",
		"status.active": "有效", "status.revoked": "已撤销", "status.expired": "已到期", "status.ended": "已终止",
		"nav.disputes": "数据异议", "dispute.open": "对获授权的数据提出异议", "dispute.record": "记录标识",
		"dispute.field": "字段（须在授权范围内）", "dispute.submit": "提交异议", "dispute.resolve": "答复",
		"dispute.none": "没有异议。", "dispute.opened": "异议 %s 已提交，提供方须在 %s 前答复。", "dispute.resolved": "异议 %s 已答复：%s。",
		"outcome.corrected": "已更正", "outcome.rejected": "数据无误（驳回）", "outcome.open": "待答复",
		"col.dispute": "异议", "col.opener": "提出方", "col.answer": "答复", "dispute.nogrant": "本部门没有可提出异议的授权。", "entry.unproved": "包含证明未通过验证",
	},
}

func msg(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	if m, ok := messages["en"][key]; ok {
		return m
	}
	return key
}
