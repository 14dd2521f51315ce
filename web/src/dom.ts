/** Small DOM helpers: the UI builds its elements with `h` and keeps long-lived rows in place with `syncChildren`. */

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Record<string, AttrValue | ((event: Event) => void)>;

/**
 * Creates an element: `on<event>` attributes become listeners, `true` an empty attribute, `false`, null and
 * undefined no attribute at all.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (value === true) element.setAttribute(name, '');
    else if (value !== false && value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else if (child !== null && child !== undefined && child !== false)
      parent.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function setChildren(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** Sets a text node's or element's text only when it changed (keeps screen readers and selections calm). */
export function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** A keyed element that `syncChildren` keeps in place while its `version` stays the same. */
export interface Keyed<T> {
  key: string;
  /** Rebuilt when this changes; updated in place (links, counters) with `update` otherwise. */
  version: string;
  item: T;
}

/**
 * Makes `parent`'s children match `items`, in order: an element whose key and version are unchanged is kept
 * (so focus, hover and selection inside it survive a refresh) and only `update`d; a changed one is rebuilt;
 * elements whose key is gone are removed. Nodes are moved only when out of order.
 */
export function syncChildren<T>(
  parent: Element,
  items: Array<Keyed<T>>,
  create: (item: T, index: number) => HTMLElement,
  update?: (element: HTMLElement, item: T, index: number) => void,
): void {
  const existing = new Map<string, HTMLElement>();
  for (const child of Array.from(parent.children)) {
    if (child instanceof HTMLElement && child.dataset.key !== undefined) existing.set(child.dataset.key, child);
    else child.remove();
  }
  items.forEach(({ key, version, item }, index) => {
    let element = existing.get(key);
    existing.delete(key);
    if (element && element.dataset.version === version) {
      update?.(element, item, index);
    } else {
      const fresh = create(item, index);
      fresh.dataset.key = key;
      fresh.dataset.version = version;
      update?.(fresh, item, index);
      if (element) {
        const hadFocus = element.contains(document.activeElement);
        element.replaceWith(fresh);
        if (hadFocus) refocus(fresh);
      }
      element = fresh;
    }
    const current = parent.children[index];
    if (current !== element) parent.insertBefore(element, current ?? null);
  });
  for (const gone of existing.values()) gone.remove();
}

/** Puts focus back into a rebuilt element: its first link or button, else nowhere in particular. */
function refocus(element: HTMLElement): void {
  element.querySelector<HTMLElement>('a[href], button:not([disabled])')?.focus();
}
