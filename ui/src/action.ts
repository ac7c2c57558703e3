/**
 * What every page does around an API call: a busy flag while it runs (buttons show progress and
 * cannot be pressed twice), the refusal as an ApiError to show with its code, and back to login
 * when the session has ended, returning to this page afterwards.
 */
import { ref } from 'vue';
import { useRoute, useRouter } from 'vue-router';
import { type ApiError, asApiError } from './api.ts';

export function useAction() {
  const router = useRouter();
  const route = useRoute();
  const busy = ref(false);
  const error = ref<ApiError>();

  /** Runs `work`; its result, or undefined when it was refused (then `error` says why). */
  async function run<T>(work: () => Promise<T>): Promise<T | undefined> {
    busy.value = true;
    error.value = undefined;
    try {
      return await work();
    } catch (err) {
      error.value = asApiError(err);
      if (error.value.unauthenticated) await router.replace({ name: 'login', query: { next: route.fullPath } });
      return undefined;
    } finally {
      busy.value = false;
    }
  }

  return { busy, error, run };
}
