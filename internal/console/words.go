package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/ledger"
)

// words says what ledger entries decided, in a sentence of the page's
// language, with departments by name: "税务局 was granted id, district of
// health.vaccinations until 23 Dec 2026 by health's officer: reason". It
// reads the entries in order, remembering each request and grant, so an
// approval or a revocation can name who and what.
type words struct {
	lang     string
	names    map[string]string
	requests map[string]map[string]any // request id → body
	grants   map[string][2]string      // grant id → grantee, dataset
}

func newWords(lang string, names map[string]string) *words {
	return &words{lang: lang, names: names, requests: map[string]map[string]any{}, grants: map[string][2]string{}}
}

func (w *words) name(dept string) string {
	if n := w.names[dept]; n != "" {
		return n
	}
	return dept
}

// actorDept is the department of an identity URI (spiffe://xhub/dept/D/...).
func actorDept(uri string) string {
	rest, ok := strings.CutPrefix(uri, "spiffe://xhub/dept/")
	if !ok {
		return uri
	}
	d, _, _ := strings.Cut(rest, "/")
	return d
}

func str(b map[string]any, k string) string {
	switch v := b[k].(type) {
	case string:
		return v
	case []any:
		var parts []string
		for _, x := range v {
			parts = append(parts, fmt.Sprint(x))
		}
		return strings.Join(parts, ", ")
	case nil:
		return ""
	}
	return fmt.Sprint(b[k])
}

func (w *words) day(b map[string]any, k string) string {
	t, err := time.Parse(time.RFC3339Nano, str(b, k))
	if err != nil {
		return str(b, k)
	}
	if w.lang == "zh" {
		return t.Local().Format("2006年1月2日")
	}
	return t.Local().Format("2 Jan 2006")
}

// say is the sentence for e (entries are given oldest first).
func (w *words) say(e adapters.Entry) string {
	b, err := e.Body()
	if err != nil {
		return ""
	}
	zh := w.lang == "zh"
	by := w.name(actorDept(e.Actor))
	reason := str(b, "reason")
	because := func(s string) string {
		if reason == "" {
			return s
		}
		if zh {
			return s + "，理由：" + reason
		}
		return s + ": " + reason
	}
	fields := func(f string) string {
		if f == "" {
			if zh {
				return "全部信息项"
			}
			return "all fields"
		}
		return f
	}
	switch e.Kind {
	case ledger.KindShareRequested:
		w.requests[str(b, "id")] = b
		if zh {
			return fmt.Sprintf("%s申请使用%s的%s，期限%s天，用途：%s", w.name(str(b, "requester")), str(b, "dataset"), fields(str(b, "fields")), str(b, "days"), str(b, "purpose"))
		}
		return fmt.Sprintf("%s asked for %s of %s for %s days: %s", w.name(str(b, "requester")), fields(str(b, "fields")), str(b, "dataset"), str(b, "days"), str(b, "purpose"))
	case ledger.KindShareApproved, ledger.KindGrantCreated:
		r := w.requests[str(b, "request")]
		grantee, ds := str(r, "requester"), str(r, "dataset")
		w.grants[str(b, "grant")] = [2]string{grantee, ds}
		if e.Kind == ledger.KindGrantCreated {
			by = map[bool]string{true: "开放共享策略", false: "the open-sharing policy"}[zh]
		} else if zh {
			by += "官员"
		} else {
			by += "'s officer"
		}
		if zh {
			return because(fmt.Sprintf("%s获授权使用%s的%s，至%s，由%s批准", w.name(grantee), ds, str(b, "fields"), w.day(b, "expires_at"), by))
		}
		return because(fmt.Sprintf("%s was granted %s of %s until %s by %s", w.name(grantee), str(b, "fields"), ds, w.day(b, "expires_at"), by))
	case ledger.KindShareRejected, ledger.KindShareWithdrawn:
		r := w.requests[str(b, "request")]
		verb := map[bool]map[string]string{true: {ledger.KindShareRejected: "被驳回", ledger.KindShareWithdrawn: "已撤回"}, false: {ledger.KindShareRejected: "was rejected", ledger.KindShareWithdrawn: "was withdrawn"}}[zh][e.Kind]
		if zh {
			return because(fmt.Sprintf("%s对%s的申请%s%s", w.name(str(r, "requester")), str(r, "dataset"), str(b, "request"), verb))
		}
		return because(fmt.Sprintf("%s's request %s for %s %s", w.name(str(r, "requester")), str(b, "request"), str(r, "dataset"), verb))
	case ledger.KindGrantRevoked, ledger.KindGrantExpired:
		g := w.grants[str(b, "grant")]
		if e.Kind == ledger.KindGrantExpired {
			if zh {
				return fmt.Sprintf("%s对%s的授权%s已到期", w.name(g[0]), g[1], str(b, "grant"))
			}
			return fmt.Sprintf("%s's grant %s on %s expired", w.name(g[0]), str(b, "grant"), g[1])
		}
		if zh {
			return because(fmt.Sprintf("%s撤销了%s对%s的授权%s", by, w.name(g[0]), g[1], str(b, "grant")))
		}
		return because(fmt.Sprintf("%s revoked %s's grant %s on %s", by, w.name(g[0]), str(b, "grant"), g[1]))
	case ledger.KindDisputeOpened:
		if zh {
			return fmt.Sprintf("%s对%s提出数据异议（%s %s）：%s", w.name(str(b, "opener")), str(b, "dataset"), str(b, "record_key"), str(b, "field"), str(b, "reason"))
		}
		return fmt.Sprintf("%s disputed %s (%s %s): %s", w.name(str(b, "opener")), str(b, "dataset"), str(b, "record_key"), str(b, "field"), str(b, "reason"))
	case ledger.KindDisputeResolved:
		if zh {
			return fmt.Sprintf("%s答复异议%s：%s，%s", by, str(b, "dispute"), msg("zh", "outcome."+str(b, "outcome")), str(b, "reason"))
		}
		return fmt.Sprintf("%s answered dispute %s: %s, %s", by, str(b, "dispute"), msg("en", "outcome."+str(b, "outcome")), str(b, "reason"))
	case ledger.KindDatasetPublished:
		if zh {
			return fmt.Sprintf("%s发布了%s「%s」（%s）", by, str(b, "id"), str(b, "title"), msg("zh", "share."+str(b, "share_type")))
		}
		return fmt.Sprintf("%s published %s “%s” (%s)", by, str(b, "id"), str(b, "title"), msg("en", "share."+str(b, "share_type")))
	case ledger.KindDeptAdded:
		if zh {
			return fmt.Sprintf("登记部门%s（%s）", str(b, "id"), str(b, "name"))
		}
		return fmt.Sprintf("department %s (%s) registered", str(b, "id"), str(b, "name"))
	}
	return adapters.Summary(e)
}
