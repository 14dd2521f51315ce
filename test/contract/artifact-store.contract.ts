import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { ArtifactStore, LinkDisposition } from '#domain/ports.ts';

/** What a link serves, read the way each adapter's links are meant to be read. */
export interface Served {
  status: number;
  html?: string;
  disposition?: string;
}

export interface ArtifactStoreUnderTest {
  store: ArtifactStore;
  /** Follows a link as a browser would. */
  follow(link: string): Promise<Served>;
}

const HTML = '<!DOCTYPE html><html><body>flame graph of fakeFlinkHotLoop</body></html>';

const link = (store: ArtifactStore, key: string, disposition: LinkDisposition, fileName = 'tm_ITIMER.html') =>
  store.link(key, { fileName, disposition, expiresInSeconds: 300 });

/** The behaviour every ArtifactStore adapter promises; run against each adapter. */
export function describeArtifactStoreContract(adapter: string, create: () => Promise<ArtifactStoreUnderTest>): void {
  describe(`ArtifactStore contract: ${adapter}`, () => {
    it('serves a stored flame graph through inline and download links', async () => {
      const { store, follow } = await create();
      await store.put('profiles/prod/taskmanager/i-1/tm_ITIMER.html', gzipSync(HTML));
      const inline = await follow(await link(store, 'profiles/prod/taskmanager/i-1/tm_ITIMER.html', 'inline'));
      expect(inline).toEqual({ status: 200, html: HTML, disposition: 'inline; filename="tm_ITIMER.html"' });
      const download = await follow(await link(store, 'profiles/prod/taskmanager/i-1/tm_ITIMER.html', 'attachment'));
      expect(download.disposition).toBe('attachment; filename="tm_ITIMER.html"');
    });

    it('overwrites an object put twice', async () => {
      const { store, follow } = await create();
      await store.put('profiles/a.html', gzipSync('<html>old</html>'));
      await store.put('profiles/a.html', gzipSync('<html>new</html>'));
      expect((await follow(await link(store, 'profiles/a.html', 'inline'))).html).toBe('<html>new</html>');
    });

    it('reads an object back as stored, compressed, and answers undefined for a key with none', async () => {
      const { store } = await create();
      const collapsed = gzipSync('java/lang/Thread.run;Busy.hot 3\n');
      await store.put('profiles/p/taskmanager/i-1/run/tm_ITIMER.collapsed', collapsed);
      expect(await store.get('profiles/p/taskmanager/i-1/run/tm_ITIMER.collapsed')).toEqual(collapsed);
      expect(await store.get('profiles/p/taskmanager/i-1/run/never-was.collapsed')).toBeUndefined();
    });

    it('deletes objects, ignoring keys that do not exist', async () => {
      const { store, follow } = await create();
      await store.put('profiles/x.html', gzipSync(HTML));
      await store.put('profiles/y.html', gzipSync(HTML));
      await store.delete(['profiles/x.html', 'profiles/never-was.html']);
      // Gone: 404, or 403 where the store does not say whether a key exists (S3 without s3:ListBucket).
      expect([403, 404]).toContain((await follow(await link(store, 'profiles/x.html', 'inline'))).status);
      expect((await follow(await link(store, 'profiles/y.html', 'inline'))).status).toBe(200);
      await store.delete([]);
    });
  });
}
