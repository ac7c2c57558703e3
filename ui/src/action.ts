/**
 * What every page does around an API call: a busy flag while it runs (buttons show progress and
 * cannot be pressed twice), the refusal as an ApiError to show with its code, and back to login
 * when the session has ended, returning to this page afterwards.
 */
import { ref, shallowRef } from 'vue';
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

/**
 * A page's changes on useAction: which one runs (its button shows progress), what the last one did
 * (for the page to announce in a role=status), and the page's data reloaded after each that worked.
 */
export function useChange<Name extends string>(reload: () => Promise<void>) {
  const action = useAction();
  const running = shallowRef<Name | undefined>();
  const done = ref('');

  /** Runs `work` as change `name`; its result, or undefined when it was refused (then `error` says why). */
  async function act<T>(name: Name, work: () => Promise<T>, message: (result: T) => string): Promise<T | undefined> {
    running.value = name;
    done.value = '';
    const result = await action.run(work);
    running.value = undefined;
    if (action.error.value) return undefined;
    done.value = message(result as T);
    await reload();
    return result;
  }

  return { ...action, running, done, act };
}
