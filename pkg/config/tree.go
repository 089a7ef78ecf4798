package config

// Node is one keyword line of the configuration and, when a '{' followed
// it, the lines of its block. keepalived's language has no other structure:
// blocks such as virtual_ipaddress hold value lines, which are Nodes too.
type Node struct {
	Pos      Pos
	Words    []string // Words[0] is the keyword; never empty (buildTree drops wordless lines)
	Text     string   // the line as read, for handlers that split it their own way
	Children []*Node
	HasBlock bool
	End      Pos // the closing '}'
	// blockUsed is set by the handler that read the block, so that a block
	// after a keyword that takes none is reported instead of lost.
	blockUsed bool
}

// Keyword returns the first word of the line.
func (n *Node) Keyword() string {
	if len(n.Words) == 0 {
		return ""
	}
	return n.Words[0]
}

// Args returns the words after the keyword.
func (n *Node) Args() []string {
	if len(n.Words) < 2 {
		return nil
	}
	return n.Words[1:]
}

// buildTree nests lines into blocks. A '{' opens a block for the line just
// before it in the same block; '}' closes the innermost open block.
func buildTree(lines []line, d *diags) *Node {
	root := &Node{HasBlock: true}
	stack := []*Node{root}
	for _, l := range lines {
		cur := stack[len(stack)-1]
		switch l.text {
		case "{":
			var owner *Node
			if n := len(cur.Children); n > 0 && !cur.Children[n-1].HasBlock {
				owner = cur.Children[n-1]
			}
			if owner == nil {
				d.errorf(l.pos, "unexpected '{' without a keyword before it")
				// Parse the block anyway so its '}' balances, but keep it
				// out of the tree.
				owner = &Node{Pos: l.pos}
			}
			owner.HasBlock = true
			stack = append(stack, owner)
		case "}":
			if len(stack) == 1 {
				d.errorf(l.pos, "extra '}' with no block open")
				continue
			}
			cur.End = l.pos
			stack = stack[:len(stack)-1]
		default:
			if len(l.words) == 0 {
				// The reader drops blank lines; a Node without a keyword
				// would break every handler that reads Words[0].
				continue
			}
			cur.Children = append(cur.Children, &Node{Pos: l.pos, Words: l.words, Text: l.text})
		}
	}
	for i := len(stack) - 1; i > 0; i-- {
		n := stack[i]
		d.errorf(n.Pos, "missing '}': the block of %q opened here is never closed", n.Keyword())
	}
	return root
}
