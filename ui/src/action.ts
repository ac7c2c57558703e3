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
 * A page's changes on useAction, each followed by the page's data reloaded when it worked.
 * `change(work, then)`: a change made in a dialog; `then` closes it once the change is made (a
 * refused change leaves the dialog open with its refusal). `act(name, work, message)`: a change
 * named for its button's progress (`running`), with what it did for the page to announce in a
 * role=status (`done`).
 */
export function useChange<Name extends string = never>(reload: () => Promise<void>) {
  const action = useAction();
  const running = shallowRef<Name | undefined>();
  const done = ref('');

  /** Runs `work`, then `then` with its result and the reload; its result, or undefined when it was refused (then `error` says why). */
  async function change<T>(work: () => Promise<T>, then: (result: T) => void = () => {}): Promise<T | undefined> {
    const result = await action.run(work);
    if (action.error.value) return undefined;
    then(result as T);
    await reload();
    return result;
  }

  /** The outcome is announced once the reloaded data shows it (a test or a person reading on sees both). */
  async function act<T>(name: Name, work: () => Promise<T>, message: (result: T) => string): Promise<T | undefined> {
    running.value = name;
    done.value = '';
    try {
      const result = await change(work);
      if (!action.error.value) done.value = message(result as T);
      return result;
    } finally {
      running.value = undefined;
    }
  }

  return { ...action, running, done, change, act };
}
