/* SPDX-License-Identifier: Apache-2.0 */
/* tick — the smallest guest kiln boots through PVH, for the snapshot-compatibility fixture
 * (tests/fixtures/snapshot/). It writes "KILN-TICK <n>\n" to COM1 forever, n counting up by 1
 * from 1, with a busy-wait between lines.
 *
 * Entry (PVH ABI, Xen docs/misc/pvh.pandoc): 32-bit protected mode, flat segments, paging and
 * interrupts off, ebx = the hvm_start_info (unused here). No interrupts, no 64-bit mode, no
 * device set-up: kiln's 8250 transmits without initialisation (THR empty always reads set).
 *
 * The counter lives in memory (`counter`, in .data) and is re-read after every line, so a
 * restored guest continues only when its RAM came back as well as its registers.
 *
 * DELAY (pause-loop iterations between lines) is set at link time by ./build.
 */
	.code32
	.set	COM1, 0x3f8

	.section .text, "ax"
	.globl	_start
_start:
	cli
	cld
	movl	$stack_top, %esp

next_line:
	incl	counter				/* the state that must survive a snapshot */
	movl	$prefix, %esi
	call	puts
	movl	counter, %eax
	call	putdec
	movb	$'\n', %al
	call	putc

	movl	$DELAY, %ecx			/* busy-wait, roughly 50-200 ms in the KVM box */
1:	pause
	decl	%ecx
	jnz	1b
	jmp	next_line

/* putc: write %al to COM1. Clobbers %edx. */
putc:
	movw	$COM1, %dx
	outb	%al, %dx
	ret

/* puts: write the NUL-terminated string at %esi. Clobbers %eax, %edx, %esi. */
puts:
	lodsb
	testb	%al, %al
	jz	2f
	call	putc
	jmp	puts
2:	ret

/* putdec: write %eax in decimal. Clobbers %eax, %ecx, %edx, %edi. */
putdec:
	movl	$digits_end, %edi
	movl	$10, %ecx
3:	xorl	%edx, %edx
	divl	%ecx
	addb	$'0', %dl
	decl	%edi
	movb	%dl, (%edi)
	testl	%eax, %eax
	jnz	3b
4:	movb	(%edi), %al
	call	putc
	incl	%edi
	cmpl	$digits_end, %edi
	jne	4b
	ret

	.section .rodata, "a"
prefix:	.asciz	"KILN-TICK "

	.section .data, "aw"
	.p2align 2
	.globl	counter
counter: .long	0

	.section .bss, "aw", @nobits
	.p2align 4
digits:	.skip	12
digits_end:
	.p2align 4
	.skip	1024
stack_top:

/* xen/include/public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", the 32-bit
 * physical entry point as its descriptor. The linker script gives it a PT_NOTE segment. */
	.section .note.Xen, "a", @note
	.p2align 2
	.long	4			/* n_namesz: "Xen\0" */
	.long	4			/* n_descsz */
	.long	18			/* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.p2align 2
	.long	_start
