package exchange

import (
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// HubPolicy is the actor of entries the hub appends on its own account
// (initialisation, expiry and open-sharing grants).
var HubPolicy = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "policy"}
