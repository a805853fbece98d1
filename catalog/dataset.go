package catalog

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xhub-gov/xhub/exchange/vocab"
)

// ShareType says on what terms a dataset is shared.
type ShareType string

const (
	ShareOpen        ShareType = "open"        // any department is granted at once
	ShareConditional ShareType = "conditional" // the owner's officer decides each request
	ShareNone        ShareType = "none"        // listed, never shared
)

// ParseShareType checks s.
func ParseShareType(s string) (ShareType, error) {
	switch t := ShareType(s); t {
	case ShareOpen, ShareConditional, ShareNone:
		return t, nil
	}
	return "", vocab.Invalid("share_type", "%q is not one of open, conditional, none", s)
}

// Status is a dataset's life-cycle state.
type Status string

const (
	StatusPublished Status = "published"
	StatusRetired   Status = "retired"
)

// Limits on catalog metadata.
const (
	MaxNameLen        = 200
	MaxTitleLen       = 200
	MaxDescriptionLen = 4000
	MaxKeywords       = 32
	MaxKeywordLen     = 64
	MaxFrequencyLen   = 64
)

// Department is a member organisation.
type Department struct {
	ID        DeptID    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Seq       uint64    `json:"seq"`
}

// Dataset is a resource in the catalog: what its owner published (the
// dataset.published body, its fields inline in the JSON) and what the
// log made of it.
type Dataset struct {
	Published
	Status      Status    `json:"status"`
	PublishedAt time.Time `json:"published_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Seq         uint64    `json:"seq"`
}

// Owner is the department that owns the dataset.
func (d *Dataset) Owner() DeptID { return d.ID.Owner() }

// ValidateName checks a department's display name.
func ValidateName(name string) error {
	return checkText("name", name, 1, MaxNameLen)
}

// ValidateMetadata checks the metadata an officer supplies when publishing.
// It normalises keywords (trimmed, lowercased, de-duplicated) in place.
func (d *Published) ValidateMetadata() error {
	if _, err := ParseDatasetID(string(d.ID)); err != nil {
		return err
	}
	if err := checkText("title", d.Title, 1, MaxTitleLen); err != nil {
		return err
	}
	if err := checkParagraph("description", d.Description, 0, MaxDescriptionLen); err != nil {
		return err
	}
	if err := checkText("frequency", d.Frequency, 0, MaxFrequencyLen); err != nil {
		return err
	}
	if _, err := ParseShareType(string(d.ShareType)); err != nil {
		return err
	}
	if err := d.Retention.Validate(); err != nil {
		return err
	}
	if len(d.Keywords) > MaxKeywords {
		return vocab.Invalid("keywords", "%d keywords, at most %d", len(d.Keywords), MaxKeywords)
	}
	seen := make(map[string]bool, len(d.Keywords))
	kw := d.Keywords[:0]
	for _, k := range d.Keywords {
		k = strings.ToLower(strings.TrimSpace(k))
		if err := checkText("keywords", k, 1, MaxKeywordLen); err != nil {
			return err
		}
		if !seen[k] {
			seen[k] = true
			kw = append(kw, k)
		}
	}
	d.Keywords = kw
	return nil
}

// checkText checks a line of catalog text (CheckLine) and its length in
// characters; checkParagraph the same for text of several lines.
func checkText(field, s string, min, max int) error {
	if err := CheckLine(field, s); err != nil {
		return err
	}
	return checkLen(field, s, min, max)
}

func checkParagraph(field, s string, min, max int) error {
	if err := CheckParagraph(field, s); err != nil {
		return err
	}
	return checkLen(field, s, min, max)
}

func checkLen(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	if n < min {
		if min == 1 {
			return vocab.Invalid(field, "is required")
		}
		return vocab.Invalid(field, "is %d characters, at least %d", n, min)
	}
	if n > max {
		return vocab.Invalid(field, "is %d characters, at most %d", n, max)
	}
	return nil
}
