// The viewer's keyboard: which key does what in the lightbox, and when keys are left alone
// (typing in a field, a modifier held, a video's own controls focused).

export const VIEWER_KEYS = {
  ArrowRight: "next",
  ArrowLeft: "previous",
  Home: "first",
  End: "last",
  f: "fullscreen",
  i: "info",
  s: "slideshow",
};

export function isTyping(target) {
  return Boolean(target?.closest?.("input, textarea, select, [contenteditable]"));
}

// The action a key press asks of the viewer, or null when the viewer should leave it alone.
export function viewerAction(event) {
  if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) return null;
  if (event.target?.tagName === "VIDEO") return null; // the player's own keys (seek, volume)
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return VIEWER_KEYS[key] ?? null;
}
