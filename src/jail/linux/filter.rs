//! The seccomp filter of a Linux jail, built from its [`Policy`] with `seccompiler`
//! (the Linux half of `confine`; system call numbers and flags are Linux facts).

use crate::jail::confine::Policy;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// One BPF instruction, as the kernel's `struct sock_filter`.
pub type SockFilter = libc::sock_filter;

const NS_FLAGS: [u64; 8] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x80, // CLONE_NEWTIME
];

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const ARCH: TargetArch = TargetArch::riscv64;

fn always() -> Vec<SeccompRule> {
    vec![]
}

fn cond(arg: u8, op: Op, v: u64) -> Cond {
    Cond::new(arg, Len::Qword, op, v).expect("valid seccomp condition")
}

/// The two programs of a jail, to be installed in this order: the EPERM filter,
/// then the ENOSYS one (`clone3` and the new mount API, so callers fall back).
pub fn filters(policy: &Policy) -> Vec<Vec<SockFilter>> {
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut deny = |nr: libc::c_long| {
        eperm.insert(nr, always());
    };
    for nr in [
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_setns,
        libc::SYS_unshare,
        libc::SYS_pivot_root,
        libc::SYS_quotactl,
        libc::SYS_quotactl_fd,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
    ] {
        deny(nr);
    }
    #[cfg(target_arch = "x86_64")]
    for nr in [
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_lookup_dcookie,
        libc::SYS_nfsservctl,
        libc::SYS_uselib,
    ] {
        deny(nr);
    }
    if policy.caps & (1 << crate::jail::confine::cap("CAP_SYSLOG")) == 0 {
        deny(libc::SYS_syslog);
    }
    if !policy.set_hostname {
        deny(libc::SYS_sethostname);
        deny(libc::SYS_setdomainname);
    }
    if !policy.mount_fs && !policy.mount_bind {
        deny(libc::SYS_mount);
        deny(libc::SYS_umount2);
    } else if !policy.mount_bind {
        let b = libc::MS_BIND as u64;
        eperm.insert(
            libc::SYS_mount,
            vec![SeccompRule::new(vec![cond(3, Op::MaskedEq(b), b)]).expect("rule")],
        );
    } else if !policy.mount_fs {
        let b = libc::MS_BIND as u64;
        eperm.insert(
            libc::SYS_mount,
            vec![SeccompRule::new(vec![cond(3, Op::MaskedEq(b), 0)]).expect("rule")],
        );
    }
    eperm.insert(
        libc::SYS_clone,
        NS_FLAGS
            .iter()
            .map(|&f| SeccompRule::new(vec![cond(0, Op::MaskedEq(f), f)]).expect("rule"))
            .collect(),
    );
    let mut enosys: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in [
        libc::SYS_clone3,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
    ] {
        enosys.insert(nr, always());
    }
    [(eperm, libc::EPERM), (enosys, libc::ENOSYS)]
        .into_iter()
        .map(|(rules, errno)| {
            let f = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                ARCH,
            )
            .expect("a valid seccomp filter");
            let prog: BpfProgram = f.try_into().expect("the filter compiles");
            harden(&prog, errno as u32)
        })
        .collect()
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// seccompiler kills a process calling from a foreign architecture and knows
/// nothing of x32: refuse both with the filter's errno instead (after its
/// architecture check, an x32 call has `nr | 0x4000_0000`).
fn harden(prog: &BpfProgram, errno: u32) -> Vec<SockFilter> {
    let ret_errno = libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA);
    let mut out: Vec<SockFilter> = prog
        .iter()
        .map(|i| {
            let k = if i.code == BPF_RET_K && i.k == libc::SECCOMP_RET_KILL_PROCESS {
                ret_errno
            } else {
                i.k
            };
            ins(i.code, i.jt, i.jf, k)
        })
        .collect();
    // The first three instructions are the architecture check; insert after them.
    let guard = [
        ins(BPF_LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        ins(BPF_JMP_JGE_K, 0, 1, 0x4000_0000),
        ins(BPF_RET_K, 0, 0, ret_errno),
    ];
    out.splice(3..3, guard);
    out
}
